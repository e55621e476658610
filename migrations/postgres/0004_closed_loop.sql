-- The clinical closed loop: closing, escalation, the audit trail. Times,
-- levels and attempts are BIGINT, as everywhere in this schema, so that
-- both engines' rows read alike.

-- A notification is closed by the first acknowledgement of any recipient.
ALTER TABLE notifications ADD COLUMN severity TEXT;
ALTER TABLE notifications ADD COLUMN closed_at BIGINT;
ALTER TABLE notifications ADD COLUMN closed_by TEXT;
UPDATE notifications SET severity = body::jsonb ->> 'severity'
    WHERE jsonb_typeof(body::jsonb -> 'severity') = 'string';
UPDATE notifications n SET closed_at = f.acknowledged_at, closed_by = f.user_id
    FROM (SELECT DISTINCT ON (notification_id) notification_id, user_id, acknowledged_at
          FROM recipients WHERE acknowledged_at IS NOT NULL
          ORDER BY notification_id, acknowledged_at, seq) f
    WHERE f.notification_id = n.id;
CREATE INDEX notifications_by_creation ON notifications (created_at);

-- A recipient added by an escalation step (NULL: an original recipient).
ALTER TABLE recipients ADD COLUMN escalation_level BIGINT;

-- A role made a recipient by an escalation step: its members join on connect.
CREATE TABLE role_recipients (
    notification_id  TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    role             TEXT NOT NULL,
    level            BIGINT NOT NULL,
    added_at         BIGINT NOT NULL,
    PRIMARY KEY (notification_id, role)
);
CREATE INDEX role_recipients_by_role ON role_recipients (role);

-- Escalation steps still to fire, one row per open notification and level.
-- `blocking`: later levels wait for it (false once a webhook step is being
-- retried); `fired`: its durable part is committed, its sockets are being
-- told; `claimed_by` / `claimed_until`: the node firing it and its lease.
CREATE TABLE escalation_steps (
    notification_id  TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    level            BIGINT NOT NULL,
    due_at           BIGINT NOT NULL,
    blocking         BOOLEAN NOT NULL DEFAULT TRUE,
    fired            BOOLEAN NOT NULL DEFAULT FALSE,
    attempts         BIGINT NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    claimed_until    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (notification_id, level)
);
CREATE INDEX escalation_steps_by_due ON escalation_steps (due_at);
-- When held steps can be taken over: the scheduler asks when nothing due is free.
CREATE INDEX IF NOT EXISTS escalation_steps_by_claim ON escalation_steps (claimed_until);

-- The audit trail: append-only, each record hashing the one before. The
-- detail is text, not jsonb: the hash covers its exact text.
CREATE TABLE audit (
    seq              BIGINT PRIMARY KEY,
    at               BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    notification_id  TEXT,
    user_id          TEXT,
    socket_id        TEXT,
    level            BIGINT,
    detail           TEXT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX audit_by_notification ON audit (notification_id, seq)
    WHERE notification_id IS NOT NULL;
CREATE INDEX audit_by_time ON audit (at);

-- Where the chain starts once retention removed its oldest records.
CREATE TABLE audit_anchor (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_anchor (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- The chain's last record, shared by every node: a transaction appends
-- only while it holds this row locked, and moves it before committing, so
-- that the records of every node form one chain, in commit order.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
