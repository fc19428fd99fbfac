-- Cameras and gates that may post to the garage. The API key itself is never stored: only its
-- SHA-256 (keys are 256 random bits, so a fast hash is enough) and a short prefix people can recognise.
CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- One row per authenticated classification request, answered or refused, with the timings the
-- prototype reported. Refused requests keep their outcome code and whatever was known.
CREATE TABLE classifications (
    id           INTEGER PRIMARY KEY,
    device_id    INTEGER NOT NULL REFERENCES devices (id),
    received_at  TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    width        INTEGER,
    height       INTEGER,
    label        TEXT,
    p_occupied   REAL,
    outcome      TEXT NOT NULL,
    receive_ms   REAL NOT NULL,
    decode_ms    REAL,
    model_ms     REAL,
    total_ms     REAL NOT NULL
);

CREATE INDEX classifications_by_device_time ON classifications (device_id, received_at);
