-- The offboarded tenants whose costs were deleted (decision 0014): usage of theirs that arrives
-- afterwards (a meter's flush taken before the deletion, or retried) is dropped, not counted
-- again. A tombstone is kept as long as usage keys are, the window in which a flush is resent.
CREATE TABLE forgotten_tenants (
    tenant_id TEXT PRIMARY KEY,
    forget_time BIGINT NOT NULL
);
