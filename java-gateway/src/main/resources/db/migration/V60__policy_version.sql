-- One row: every change to a live policy (content filters, system prompts, admin switches) bumps it
-- in the same transaction, and every gateway instance polls it (policy/PolicyVersions) to reload.
CREATE TABLE policy_version (
    id      INTEGER PRIMARY KEY,
    version BIGINT  NOT NULL
);
INSERT INTO policy_version (id, version) VALUES (1, 0);
