-- The garage on SQLite: drivers, sessions, charges and the records around them. The PostgreSQL
-- twin is migrations-postgres/0001_garage.sql; the two keep the same tables, columns and
-- constraints so one query text serves both (only types and id generation differ).
--
-- Plates at rest: `*_hmac` columns hold a keyed HMAC-SHA256 of the plate's matching key (the key
-- is configuration, never stored here); a readable spelling is kept only where a person needs it.
-- Ids are the domain's 32-hex-digit ids; times are RFC 3339 text written by sqlx.

CREATE TABLE drivers (
    id              TEXT PRIMARY KEY,
    payment_method  TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

-- The driver sees and edits their plates, so the spelling is kept; one spelling, one account.
CREATE TABLE driver_plates (
    driver_id      TEXT NOT NULL REFERENCES drivers (id),
    plate_display  TEXT NOT NULL UNIQUE,
    plate_hmac     TEXT NOT NULL,
    added_at       TEXT NOT NULL,
    PRIMARY KEY (driver_id, plate_display)
);
CREATE INDEX driver_plates_by_hmac ON driver_plates (plate_hmac);

-- `state_detail` is the domain's SessionState as JSON (exact, including review reasons);
-- `state`, `exit_at`, `price_*` and `settled_at` repeat what queries and constraints need.
-- No spelling here: every worker reads this table, so it holds only the digest, which retention
-- sets to NULL on old settled sessions.
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    plate_hmac        TEXT,
    entry_at          TEXT NOT NULL,
    exit_at           TEXT,
    state             TEXT NOT NULL CHECK (state IN ('open', 'closed', 'paid', 'unpaid', 'in_review')),
    state_detail      TEXT NOT NULL,
    price_minor       INTEGER,
    currency          TEXT,
    settled_at        TEXT,
    payer_driver_id   TEXT REFERENCES drivers (id),
    payer_link_token  TEXT,
    permit_id         TEXT,
    discounts         TEXT NOT NULL,
    version           INTEGER NOT NULL,
    CHECK ((payer_driver_id IS NULL) <> (payer_link_token IS NULL))
);
CREATE INDEX sessions_open_by_plate ON sessions (plate_hmac) WHERE state = 'open';
CREATE INDEX sessions_by_settlement ON sessions (state, settled_at);

-- The spelling of a session's plate, kept apart for the people who need it (an operator deciding
-- a review, a driver's history) and deleted by retention with the session's digest.
CREATE TABLE session_plates (
    session_id     TEXT PRIMARY KEY REFERENCES sessions (id),
    plate_display  TEXT NOT NULL
);

-- One row per idempotency key: a retry after a crash finds the row instead of adding one.
CREATE TABLE charges (
    idempotency_key  TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions (id),
    driver_id        TEXT NOT NULL,
    amount_minor     INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('requested', 'succeeded', 'failed')),
    requested_at     TEXT NOT NULL,
    settled_at       TEXT,
    reference        TEXT,
    failure_reason   TEXT
);
CREATE INDEX charges_requested ON charges (requested_at) WHERE state = 'requested';

-- The receipt as issued (JSON); it shows the plate masked only.
CREATE TABLE receipts (
    session_id   TEXT PRIMARY KEY REFERENCES sessions (id),
    total_minor  INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    body         TEXT NOT NULL,
    issued_at    TEXT NOT NULL
);

-- `body` is the ReviewItem as JSON, read and all: the operator deciding it needs the spelling.
CREATE TABLE review_items (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT,
    reason       TEXT NOT NULL,
    body         TEXT NOT NULL,
    raised_at    TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT,
    resolution   TEXT
);
CREATE INDEX review_items_open ON review_items (raised_at) WHERE resolved_at IS NULL;

-- Append-only: nothing in the store updates or deletes a row here.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY,
    who          TEXT NOT NULL,
    action       TEXT NOT NULL,
    body         TEXT NOT NULL,
    why          TEXT NOT NULL,
    at           TEXT NOT NULL
);

-- Operators read and edit these lists, so the spelling is kept.
CREATE TABLE plate_list_entries (
    plate_display  TEXT PRIMARY KEY,
    list           TEXT NOT NULL CHECK (list IN ('allow', 'deny')),
    changed_at     TEXT NOT NULL
);

-- `terms` is the domain's PermitTerms as JSON (plates included: the operator manages them).
CREATE TABLE permits (
    id          TEXT PRIMARY KEY,
    terms       TEXT NOT NULL,
    valid_from  TEXT NOT NULL,
    valid_to    TEXT NOT NULL,
    saved_at    TEXT NOT NULL
);

-- Every tariff ever saved, so any past stay can be priced again; at most one is active.
CREATE TABLE tariffs (
    version     INTEGER PRIMARY KEY,
    spec        TEXT NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX tariffs_one_active ON tariffs (active) WHERE active;
