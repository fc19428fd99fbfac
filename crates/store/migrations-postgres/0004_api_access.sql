-- Driver access tokens and refunds; the SQLite twin is migrations/0005_api_access.sql (device keys
-- and their roles live in the embedded database only, so they are not here).

CREATE TABLE driver_tokens (
    token_hash  TEXT PRIMARY KEY,
    driver_id   TEXT NOT NULL REFERENCES drivers (id),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE refunds (
    refund_key    TEXT PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    charge_key    TEXT NOT NULL REFERENCES charges (idempotency_key),
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    reference     TEXT NOT NULL,
    refunded_by   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    refunded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX refunds_by_session ON refunds (session_id);
