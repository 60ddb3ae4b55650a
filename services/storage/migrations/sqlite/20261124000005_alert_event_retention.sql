-- The tiering job removes a tenant's alert events past its hot retention, by time.
CREATE INDEX alert_events_by_time ON alert_events (tenant_id, event_time);
