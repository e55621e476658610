-- The backend's grants of study rooms: a user may join a granted room
-- whatever their token's `rooms` claim says, on every node, until the
-- grant is revoked.
CREATE TABLE room_grants (
    room        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (room, user_id)
);
