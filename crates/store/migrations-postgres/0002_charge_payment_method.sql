-- The payment method a charge was sent to, kept with the request: a retry after a crash must send
-- the provider the same parameters under the same key, even if the driver has changed cards since.
-- Nullable because charges recorded before this column have none; their retry uses the driver's
-- current method. The SQLite twin is migrations/0003_charge_payment_method.sql.
ALTER TABLE charges ADD COLUMN payment_method TEXT;
