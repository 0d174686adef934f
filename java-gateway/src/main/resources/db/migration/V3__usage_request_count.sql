-- Requests refused before a key is known (401) are counted, not stored one by one: one row per
-- endpoint and flush carries how many there were (usage_source 'aggregated'). Every other row is 1.
ALTER TABLE usage_record ADD COLUMN request_count INTEGER DEFAULT 1 NOT NULL;
