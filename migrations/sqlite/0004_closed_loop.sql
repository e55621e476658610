-- The clinical closed loop: closing, escalation, the audit trail.

-- A notification is closed by the first acknowledgement of any recipient.
ALTER TABLE notifications ADD COLUMN severity TEXT;
ALTER TABLE notifications ADD COLUMN closed_at INTEGER;
ALTER TABLE notifications ADD COLUMN closed_by TEXT;
UPDATE notifications SET severity = json_extract(body, '$.severity')
    WHERE json_type(body, '$.severity') = 'text';
UPDATE notifications SET
    closed_at = (SELECT min(acknowledged_at) FROM recipients r WHERE r.notification_id = notifications.id),
    closed_by = (SELECT user_id FROM recipients r WHERE r.notification_id = notifications.id
                 AND r.acknowledged_at IS NOT NULL ORDER BY r.acknowledged_at, r.seq LIMIT 1);
CREATE INDEX IF NOT EXISTS notifications_by_creation ON notifications (created_at);

-- A recipient added by an escalation step (NULL: an original recipient).
ALTER TABLE recipients ADD COLUMN escalation_level INTEGER;

-- A role made a recipient by an escalation step: its members join on connect.
CREATE TABLE IF NOT EXISTS role_recipients (
    notification_id  TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    role             TEXT NOT NULL,
    level            INTEGER NOT NULL,
    added_at         INTEGER NOT NULL,
    PRIMARY KEY (notification_id, role)
);
CREATE INDEX IF NOT EXISTS role_recipients_by_role ON role_recipients (role);

-- Escalation steps still to fire, one row per open notification and level.
-- `blocking`: later levels wait for it (0 once a webhook step is being
-- retried); `fired`: its durable part is committed, its sockets are being
-- told; `claimed_by` / `claimed_until`: the node firing it and its lease.
CREATE TABLE IF NOT EXISTS escalation_steps (
    notification_id  TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    level            INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    blocking         INTEGER NOT NULL DEFAULT 1,
    fired            INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    claimed_until    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (notification_id, level)
);
CREATE INDEX IF NOT EXISTS escalation_steps_by_due ON escalation_steps (due_at);
-- When held steps can be taken over: the scheduler asks when nothing due is free.
CREATE INDEX IF NOT EXISTS escalation_steps_by_claim ON escalation_steps (claimed_until);

-- The audit trail: append-only, each record hashing the one before.
CREATE TABLE IF NOT EXISTS audit (
    seq              INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    notification_id  TEXT,
    user_id          TEXT,
    socket_id        TEXT,
    level            INTEGER,
    detail           TEXT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_notification ON audit (notification_id, seq)
    WHERE notification_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);

-- Where the chain starts once retention removed its oldest records.
CREATE TABLE IF NOT EXISTS audit_anchor (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_anchor (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
