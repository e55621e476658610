-- The audit trail's records by the hour they happened in (`at` / 3,600,000):
-- the first and last record of each hour. A period's records lie between
-- the first record of its first hour and the last of its last, so the
-- export reads that range of `seq` instead of an index on `at`, which
-- cost every record an index entry; this costs each commit one row.
CREATE TABLE IF NOT EXISTS audit_hours (
    hour       INTEGER PRIMARY KEY,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL
);
INSERT OR IGNORE INTO audit_hours (hour, first_seq, last_seq)
    SELECT at / 3600000, min(seq), max(seq) FROM audit GROUP BY at / 3600000;
DROP INDEX IF EXISTS audit_by_time;
