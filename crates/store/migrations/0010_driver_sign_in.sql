-- Driver sign-in without email. The PostgreSQL twin is migrations-postgres/0009_driver_sign_in.sql.
--
-- `recovery_code_hash`: SHA-256 of the driver's recovery code (100 random bits, shown once), so a
-- driver signs in on a new phone with a plate on the account and the code. NULL for accounts made
-- before this column and for the plateless accounts pay-by-link makes; unique, so a code names
-- one account at most.
ALTER TABLE drivers ADD COLUMN recovery_code_hash TEXT;
CREATE UNIQUE INDEX drivers_by_recovery_code ON drivers (recovery_code_hash);

-- Tries at pay-by-plate, per plate (its digest, never the spelling): a driver who names the wrong
-- arrival hour too often is sent to the entry link or the intercom. A right try is deleted again,
-- so only wrong ones count; rows older than the counting window are deleted as new ones arrive.
CREATE TABLE pay_by_plate_tries (
    try_id      TEXT PRIMARY KEY,
    plate_hmac  TEXT NOT NULL,
    tried_at    TEXT NOT NULL
);
CREATE INDEX pay_by_plate_tries_by_plate ON pay_by_plate_tries (plate_hmac, tried_at);
CREATE INDEX pay_by_plate_tries_by_time ON pay_by_plate_tries (tried_at);
