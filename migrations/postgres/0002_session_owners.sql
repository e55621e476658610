-- The user each session belongs to: the user whose token first used it.
-- A token of another user carrying the same session id is refused, on
-- every node and after every restart.
CREATE TABLE session_owners (
    session_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    claimed_at  BIGINT NOT NULL
);

CREATE INDEX session_owners_by_age ON session_owners (claimed_at);
