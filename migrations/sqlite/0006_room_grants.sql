-- The backend's grants of study rooms: a user may join a granted room
-- whatever their token's `rooms` claim says, until the grant is revoked.
CREATE TABLE IF NOT EXISTS room_grants (
    room        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (room, user_id)
) WITHOUT ROWID;
