-- model: the model a conversation's replies come from (the page's picker); null: none chosen, the
-- gateway's default (the model of the default pool, or the first pool's).
ALTER TABLE conversation ADD COLUMN model VARCHAR(200);
