-- The functions' inbox: one row per (function, CloudEvent id) a function has taken on, so that an
-- event delivered twice (a broker's retry, two replicas handed the same event) is acted on once.
-- A row with no finished_at is a claim in progress; one older than the claim lease is taken over
-- (its worker died). The SQLite twin is migrations/0006_handled_events.sql.

CREATE TABLE handled_events (
    function     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    reply        TEXT,
    PRIMARY KEY (function, event_id)
);
CREATE INDEX handled_events_by_age ON handled_events (finished_at);

-- Devices and classification records, so that in distributed mode no function keeps state on
-- local disk: the twins of ../migrations/0001_devices_and_classifications.sql (and the role
-- column of 0005_api_access.sql).
CREATE TABLE devices (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    role        TEXT NOT NULL DEFAULT 'device' CHECK (role IN ('device', 'operator'))
);

CREATE TABLE classifications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    BIGINT NOT NULL REFERENCES devices (id),
    received_at  TIMESTAMPTZ NOT NULL,
    bytes        BIGINT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    label        TEXT,
    p_occupied   DOUBLE PRECISION,
    outcome      TEXT NOT NULL,
    receive_ms   DOUBLE PRECISION NOT NULL,
    decode_ms    DOUBLE PRECISION,
    model_ms     DOUBLE PRECISION,
    total_ms     DOUBLE PRECISION NOT NULL
);
CREATE INDEX classifications_by_device_time ON classifications (device_id, received_at);
