-- Lot layouts kept in the database (`valet lot add`, `valet lot import --data`), so every
-- occupancy and query replica reads the same layouts and sees one added while it runs. The
-- PostgreSQL twin is migrations-postgres/0010_lot_layouts.sql.
-- `layout` is the layout's TOML text (valet-lot parses and validates it; the store does not
-- depend on vision); `version` counts saves, so a replica re-reads only what changed.

CREATE TABLE lot_layouts (
    lot_id     TEXT PRIMARY KEY,
    layout     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    saved_at   TEXT NOT NULL
);

-- The query function follows the history frame by frame (`LotHistory::frames_after`), and
-- retention deletes changes by frame.
CREATE INDEX lot_space_changes_by_frame ON lot_space_changes (frame_id);
