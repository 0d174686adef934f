-- Degradation switches and fallback routes, shared by every gateway instance (changed together with a
-- policy_version bump, V60; every instance reloads them when the version moves). kind: 'switch' (subject max_tokens_cap or
-- refuse_new_conversations), 'paused' (subject: a model or pool; value: the message), 'fallback'
-- (subject: a pool; value: the model whose pool serves instead).
CREATE TABLE degrade_setting (
    kind          VARCHAR(16)   NOT NULL,
    subject       VARCHAR(200)  NOT NULL,
    setting_value VARCHAR(2000) NOT NULL,
    PRIMARY KEY (kind, subject)
);
