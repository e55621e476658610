-- One row that the readiness check rewrites: a store that can read but
-- cannot commit (a full disk) is not ready.
CREATE TABLE IF NOT EXISTS write_probe (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    probes  INTEGER NOT NULL
);

INSERT OR IGNORE INTO write_probe (id, probes) VALUES (1, 0);
