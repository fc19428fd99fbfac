-- Lot occupancy history: one row per camera frame read (the lot's counts after it and every
-- space's state as JSON), and one row per space whose smoothed state changed on that frame. The
-- SQLite twin is migrations/0004_lot_history.sql.

CREATE TABLE lot_frames (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id       TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    observed_at  TIMESTAMPTZ NOT NULL,
    free         BIGINT NOT NULL,
    occupied     BIGINT NOT NULL,
    unknown      BIGINT NOT NULL,
    spaces       TEXT NOT NULL,
    counts       TEXT NOT NULL
);
CREATE INDEX lot_frames_by_lot ON lot_frames (lot_id, observed_at);

CREATE TABLE lot_space_changes (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    frame_id     BIGINT NOT NULL REFERENCES lot_frames (id),
    lot_id       TEXT NOT NULL,
    space_id     TEXT NOT NULL,
    from_state   TEXT CHECK (from_state IN ('free', 'occupied')),
    to_state     TEXT NOT NULL CHECK (to_state IN ('free', 'occupied')),
    confidence   DOUBLE PRECISION NOT NULL,
    changed_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX lot_space_changes_by_lot ON lot_space_changes (lot_id, changed_at);
