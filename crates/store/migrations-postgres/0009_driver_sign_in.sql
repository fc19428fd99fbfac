-- Driver sign-in without email. The SQLite twin is migrations/0010_driver_sign_in.sql.
--
-- `recovery_code_hash`: SHA-256 of the driver's recovery code (100 random bits, shown once), so a
-- driver signs in on a new phone with a plate on the account and the code. NULL for accounts made
-- before this column and for the plateless accounts pay-by-link makes; unique, so a code names
-- one account at most.
ALTER TABLE drivers ADD COLUMN recovery_code_hash TEXT;
CREATE UNIQUE INDEX drivers_by_recovery_code ON drivers (recovery_code_hash);

