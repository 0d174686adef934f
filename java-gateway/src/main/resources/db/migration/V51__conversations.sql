-- Chat history of the browser page, owned by the API key that wrote it (so another device
-- logged in with the same key sees it).
CREATE TABLE conversation (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    key_id      BIGINT       NOT NULL,
    title       VARCHAR(200) NOT NULL,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at  TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX conversation_key_updated ON conversation (key_id, updated_at);

-- status: complete | streaming | stopped | error. session_hash: the browser session that may
-- open (and cancel) an assistant message's stream.
CREATE TABLE chat_message (
    id                 VARCHAR(36)     NOT NULL PRIMARY KEY,
    conversation_id    VARCHAR(36)     NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    seq                INTEGER         NOT NULL,
    role               VARCHAR(16)     NOT NULL,
    content            VARCHAR(1000000) NOT NULL,
    status             VARCHAR(16)     NOT NULL,
    finish_reason      VARCHAR(32),
    error_message      VARCHAR(1000),
    session_hash       CHAR(64),
    prompt_tokens      INTEGER,
    completion_tokens  INTEGER,
    created_at         TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT chat_message_order UNIQUE (conversation_id, seq)
);
