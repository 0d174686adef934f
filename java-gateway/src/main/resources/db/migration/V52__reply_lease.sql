-- alive_at: the lease of a reply being generated, renewed by the gateway generating it. A streaming
-- reply whose lease ran out has no gateway behind it (it crashed) and is marked failed.
ALTER TABLE chat_message ADD COLUMN alive_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX chat_message_status ON chat_message (status);
