-- Per-camera occupancy calibration: the operator's labels (one bay on one frame, free or
-- occupied, with the bay's warped crop as PNG), and every adapter fitted from them, versioned per
-- (lot, camera), refused fits included. The PostgreSQL twin is
-- migrations-postgres/0012_occupancy_calibration.sql.
-- `frame` is the labelled frame's key (its time or file stem); `labelled_by` an operator's name
-- or `cli`. `params` is the adapter as JSON, read only by the occupancy function.

CREATE TABLE occupancy_labels (
    id            INTEGER PRIMARY KEY,
    lot_id        TEXT NOT NULL,
    camera        TEXT NOT NULL,
    space         TEXT NOT NULL,
    frame         TEXT NOT NULL,
    frame_width   INTEGER NOT NULL,
    frame_height  INTEGER NOT NULL,
    occupied      BOOLEAN NOT NULL,
    crop          BLOB NOT NULL,
    labelled_at   TEXT NOT NULL,
    labelled_by   TEXT NOT NULL,
    -- A second label for the same bay on the same frame is refused, not a silent vote. Its
    -- index also serves a camera's labels in (frame, space) order.
    UNIQUE (lot_id, camera, frame, space)
);
-- Retention forgets labels by age.
CREATE INDEX occupancy_labels_by_time ON occupancy_labels (labelled_at);

CREATE TABLE occupancy_adapters (
    lot_id              TEXT NOT NULL,
    camera              TEXT NOT NULL,
    version             INTEGER NOT NULL,
    fitted_at           TEXT NOT NULL,
    fitted_by           TEXT NOT NULL,
    labels              INTEGER NOT NULL,
    universal_accuracy  REAL NOT NULL,
    adapted_accuracy    REAL NOT NULL,
    fit_ms              REAL NOT NULL,
    params              TEXT NOT NULL,
    active              BOOLEAN NOT NULL,
    note                TEXT,
    PRIMARY KEY (lot_id, camera, version)
);
-- At most one adapter per camera is in use; none means the universal model.
CREATE UNIQUE INDEX occupancy_adapters_one_active ON occupancy_adapters (lot_id, camera) WHERE active;
