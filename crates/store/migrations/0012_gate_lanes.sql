-- The gate lanes Valet knows: every camera that has reported a plate read, entry or exit. A
-- barrier is lifted by hand only on a lane listed here, so a typo'd lane is refused instead of
-- being audited as lifted. The PostgreSQL twin is migrations-postgres/0011_gate_lanes.sql.
CREATE TABLE gate_lanes (
    camera      TEXT PRIMARY KEY,
    direction   TEXT NOT NULL CHECK (direction IN ('entry', 'exit')),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL
);
