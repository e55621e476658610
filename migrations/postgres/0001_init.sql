-- Herald's durable inbox, shared by every node: one row per notification,
-- one per recipient. Times are Unix milliseconds, as in the SQLite schema.
-- The body stays text, not jsonb: jsonb would reorder its keys, and a
-- notification reads back exactly as it was first stored.
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE recipients (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    acknowledged_at  BIGINT,
    UNIQUE (notification_id, user_id)
);

CREATE INDEX recipients_by_user ON recipients (user_id, seq);
-- A user's unacknowledged notifications (every catch-up reads them): the
-- nodes share the database, so no node can count them in memory.
CREATE INDEX recipients_unacknowledged ON recipients (user_id, seq) WHERE acknowledged_at IS NULL;
CREATE INDEX recipients_by_age ON recipients (created_at);

-- Sessions that were expired or logged out: their tokens are refused.
CREATE TABLE expired_sessions (
    session_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    expired_at  BIGINT NOT NULL
);
