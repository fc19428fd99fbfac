-- Lot occupancy history: one row per camera frame read (the lot's counts after it and every
-- space's state as JSON), and one row per space whose smoothed state changed on that frame. The
-- PostgreSQL twin is migrations-postgres/0003_lot_history.sql.
-- Ids (lot, camera, space) are the layout file's; times are RFC 3339 text written by sqlx.

CREATE TABLE lot_frames (
    id           INTEGER PRIMARY KEY,
    lot_id       TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    observed_at  TEXT NOT NULL,
    free         INTEGER NOT NULL,
    occupied     INTEGER NOT NULL,
    unknown      INTEGER NOT NULL,
    spaces       TEXT NOT NULL,
    counts       TEXT NOT NULL
);
CREATE INDEX lot_frames_by_lot ON lot_frames (lot_id, observed_at);

CREATE TABLE lot_space_changes (
    id           INTEGER PRIMARY KEY,
    frame_id     INTEGER NOT NULL REFERENCES lot_frames (id),
    lot_id       TEXT NOT NULL,
    space_id     TEXT NOT NULL,
    from_state   TEXT CHECK (from_state IN ('free', 'occupied')),
    to_state     TEXT NOT NULL CHECK (to_state IN ('free', 'occupied')),
    confidence   REAL NOT NULL,
    changed_at   TEXT NOT NULL
);
CREATE INDEX lot_space_changes_by_lot ON lot_space_changes (lot_id, changed_at);
