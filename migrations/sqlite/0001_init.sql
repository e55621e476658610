-- Herald's durable inbox: one row per notification, one per recipient.
CREATE TABLE IF NOT EXISTS notifications (
    id          TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS recipients (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    acknowledged_at  INTEGER,
    UNIQUE (notification_id, user_id)
);

CREATE INDEX IF NOT EXISTS recipients_by_user ON recipients (user_id, seq);
CREATE INDEX IF NOT EXISTS recipients_unacknowledged ON recipients (user_id, seq) WHERE acknowledged_at IS NULL;
CREATE INDEX IF NOT EXISTS recipients_by_age ON recipients (created_at);

-- Sessions that were expired or logged out: their tokens are refused.
CREATE TABLE IF NOT EXISTS expired_sessions (
    session_id  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    expired_at  INTEGER NOT NULL
);
