-- Shared files (contract section 14, "Files"): one row per file, one per
-- recipient, and the bytes in chunks of at most 256 KiB, so that every
-- node serves every file and a download reads one chunk at a time.
CREATE TABLE files (
    file_id       TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    sender        TEXT,
    room          TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);

CREATE INDEX files_expiry ON files (expires_at);

CREATE TABLE file_recipients (
    file_id        TEXT NOT NULL REFERENCES files (file_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    downloaded_at  BIGINT,
    PRIMARY KEY (user_id, file_id)
);

CREATE INDEX file_recipients_file ON file_recipients (file_id);

CREATE TABLE file_chunks (
    file_id  TEXT NOT NULL REFERENCES files (file_id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (file_id, seq)
);
