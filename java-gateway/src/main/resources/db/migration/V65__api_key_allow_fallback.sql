-- A key may be served by a model's fallback route (degradation) when its own pool cannot serve.
ALTER TABLE api_key ADD COLUMN allow_fallback BOOLEAN NOT NULL DEFAULT FALSE;
