-- An operator's browser session on the dashboard: the cookie's token only as SHA-256, the key it
-- was opened with, and when it lapses. The PostgreSQL twin is migrations-postgres/0006_operator_logins.sql.
CREATE TABLE operator_logins (
    token_hash  TEXT PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
