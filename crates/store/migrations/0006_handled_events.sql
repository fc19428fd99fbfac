-- The functions' inbox: one row per (function, CloudEvent id) a function has taken on, so that an
-- event delivered twice (a broker's retry, two replicas handed the same event) is acted on once.
-- A row with no finished_at is a claim in progress; one older than the claim lease is taken over
-- (its worker died). The PostgreSQL twin is migrations-postgres/0005_functions.sql.

CREATE TABLE handled_events (
    function     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    claimed_at   TEXT NOT NULL,
    finished_at  TEXT,
    reply        TEXT,
    PRIMARY KEY (function, event_id)
);
CREATE INDEX handled_events_by_age ON handled_events (finished_at);
