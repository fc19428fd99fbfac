-- Gate cameras Valet pulls frames from (`valet cameras add`, `POST /v1/cameras`, the dashboard):
-- one row per camera, the one copy every plate-reader replica polls to start and stop its pulls.
-- The PostgreSQL twin is migrations-postgres/0013_gate_cameras.sql.
-- `url` may carry the camera's credentials: it is shown only redacted. `lane` and `region` are
-- optional (NULL: the camera's name is its lane; the reader ranks spellings for every region).
-- Changing a camera is remove + add, so a replica restarts its pull on the new settings.
CREATE TABLE gate_cameras (
    name       TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('entry', 'exit')),
    lane       TEXT,
    region     TEXT,
    every_ms   INTEGER NOT NULL,
    added_at   TEXT NOT NULL,
    added_by   TEXT NOT NULL
);
