-- The user each session belongs to: the user whose token first used it.
-- A token of another user carrying the same session id is refused.
CREATE TABLE IF NOT EXISTS session_owners (
    session_id  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    claimed_at  INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS session_owners_by_age ON session_owners (claimed_at);
