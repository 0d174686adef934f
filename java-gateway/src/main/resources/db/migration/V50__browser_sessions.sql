-- Browser sessions of the chat page (/api/*). The cookie holds a random token; only its
-- SHA-256 is stored, like API keys. key_id has no foreign key: deleting a key ends its
-- sessions at the next request (the key lookup fails), and the rows expire.
CREATE TABLE browser_session (
    token_hash  CHAR(64)  NOT NULL PRIMARY KEY,
    key_id      BIGINT    NOT NULL,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at  TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX browser_session_expiry ON browser_session (expires_at);
