-- One row that the readiness check rewrites: a database that can read but
-- cannot commit (a full disk, a read-only standby) is not ready.
CREATE TABLE write_probe (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    probes  BIGINT NOT NULL
);

INSERT INTO write_probe (id, probes) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
