-- Audit records committed but not yet sealed into the chain. A write that
-- has something to record inserts it here in its own transaction, so the
-- record commits exactly when the write it describes does, without waiting
-- for the chain's head. A sealer (one at a time across the nodes, under
-- an advisory lock) moves committed rows into `audit` in `id` order,
-- giving each its place and hash, and deletes them in the same
-- transaction: every record is in exactly one of the two tables.
-- `queued_at` is the database's clock, for the age `herald audit verify`
-- reports; `at` is the event's own time, which the hash covers.
CREATE TABLE audit_unsealed (
    id               BIGSERIAL PRIMARY KEY,
    at               BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    notification_id  TEXT,
    user_id          TEXT,
    socket_id        TEXT,
    level            BIGINT,
    detail           TEXT,
    queued_at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
-- A notification's timeline and escalation read its unsealed records too.
CREATE INDEX audit_unsealed_by_notification ON audit_unsealed (notification_id)
    WHERE notification_id IS NOT NULL;
