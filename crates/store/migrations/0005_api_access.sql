-- What the HTTP API needs beyond the gate: who may call it, and the refunds operators make. The
-- PostgreSQL twin of the garage tables is migrations-postgres/0004_api_access.sql.

-- An API key belongs to a device (a camera or gate posting reads and frames) or to an operator
-- (a person managing the garage); the role decides which endpoints accept it.
ALTER TABLE devices ADD COLUMN role TEXT NOT NULL DEFAULT 'device' CHECK (role IN ('device', 'operator'));

-- A driver's access tokens, handed out at sign-up; like device keys, only their SHA-256 is kept.
CREATE TABLE driver_tokens (
    token_hash  TEXT PRIMARY KEY,
    driver_id   TEXT NOT NULL REFERENCES drivers (id),
    created_at  TEXT NOT NULL
);

-- One row per refund key: an operator's retry after a lost answer finds the row instead of
-- refunding twice. `refunded_by`/`reason` repeat the audit event so a statement can show them.
CREATE TABLE refunds (
    refund_key    TEXT PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    charge_key    TEXT NOT NULL REFERENCES charges (idempotency_key),
    amount_minor  INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    reference     TEXT NOT NULL,
    refunded_by   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    refunded_at   TEXT NOT NULL
);
CREATE INDEX refunds_by_session ON refunds (session_id);
