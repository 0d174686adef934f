-- A key's token budget: at most budget_tokens (prompt + completion) per budget_period (day | month |
-- total, periods in UTC). Both null: no budget.
ALTER TABLE api_key ADD COLUMN budget_tokens BIGINT;
ALTER TABLE api_key ADD COLUMN budget_period VARCHAR(8);
