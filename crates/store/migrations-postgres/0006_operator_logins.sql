-- An operator's browser session on the dashboard: the cookie's token only as SHA-256, the key it
-- was opened with, and when it lapses. The SQLite twin is migrations/0007_operator_logins.sql.
CREATE TABLE operator_logins (
    token_hash  TEXT PRIMARY KEY,
    device_id   BIGINT NOT NULL REFERENCES devices (id),
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
