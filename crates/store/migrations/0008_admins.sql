-- Admins: operators who may also change the garage's rules (tariff, lists, permits). A flag on the
-- operator's key rather than a third role value, so the devices table keeps its CHECK constraint
-- (SQLite cannot alter one in place). The PostgreSQL twin is migrations-postgres/0007_admins.sql.
ALTER TABLE devices ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
