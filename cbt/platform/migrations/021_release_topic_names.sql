-- What a release calls each of its items' topics ({"ham-so": "Hàm số"}),
-- from its signed bank.yaml, so that pages show topic names, not codes.
ALTER TABLE bank_releases ADD COLUMN topic_names jsonb NOT NULL DEFAULT '{}'::jsonb;
