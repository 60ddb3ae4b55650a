-- The idempotency keys are forgotten a day after they were recorded, every few minutes: by
-- their time, not by a scan of every key.
CREATE INDEX usage_keys_by_time ON usage_keys (record_time);
