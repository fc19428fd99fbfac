-- The twin of ../migrations/0016_mail.sql (read its notes there).
-- Receipts and failed-charge notices by e-mail. A driver may give an address; mail is owed only
-- for what happened after they gave it (`email_since`), so adding one does not mail a year of
-- old receipts.
ALTER TABLE drivers ADD COLUMN email TEXT;
ALTER TABLE drivers ADD COLUMN email_since TIMESTAMPTZ;

-- The outbox: one row per mail owed, keyed by what it is about (`receipt:<session>`,
-- `unpaid:<session>`), so a receipt written again, a replayed webhook or a second sweep owes
-- nothing more. The body is rendered when it is sent, from the stored receipt or session.
-- `next_attempt_at` is also the sender's lease: a sender claims a row by moving it forward, so
-- two senders never send one row at once, and a sender that died leaves it due again later.
CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('receipt', 'charge_failed')),
    session_id       TEXT NOT NULL REFERENCES sessions (id),
    driver_id        TEXT NOT NULL REFERENCES drivers (id),
    queued_at        TIMESTAMPTZ NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    attempts         BIGINT NOT NULL,
    last_error       TEXT,
    recipient        TEXT,
    done_at          TIMESTAMPTZ,
    outcome          TEXT CHECK (outcome IN ('sent', 'skipped', 'given_up'))
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE done_at IS NULL;
