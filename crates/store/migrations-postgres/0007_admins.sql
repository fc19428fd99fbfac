-- Admins: operators who may also change the garage's rules; see ../migrations/0008_admins.sql.
ALTER TABLE devices ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
