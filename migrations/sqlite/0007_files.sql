-- Shared files (contract section 14, "Files"): one row per file, one per
-- recipient. The bytes are in the data directory's `files/` folder, named
-- by the file id; a row is written only once its bytes are in place.
CREATE TABLE IF NOT EXISTS files (
    file_id       TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    sender        TEXT,
    room          TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_at);

CREATE TABLE IF NOT EXISTS file_recipients (
    file_id        TEXT NOT NULL REFERENCES files (file_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    downloaded_at  INTEGER,
    PRIMARY KEY (user_id, file_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS file_recipients_file ON file_recipients (file_id);
