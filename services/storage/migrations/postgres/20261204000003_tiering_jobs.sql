-- Tiering jobs (`StartTieringJob`): one row a job, and one a tenant the job is done with (its
-- checkpoint, with what it did), so a job that a restart or a lost lease interrupted continues
-- from its last finished tenant, and a job's progress is the sum of its tenants. Times are µs
-- since the Unix epoch, ids text: the same statements serve PostgreSQL and SQLite.
CREATE TABLE tiering_jobs (
    job_id TEXT PRIMARY KEY,
    as_of BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    -- The replica running it, and until when its lease holds; a running job whose lease ran
    -- out is taken over.
    owner TEXT,
    lease_until BIGINT,
    tenants_total INTEGER NOT NULL DEFAULT 0
);
-- One job runs at a time, across replicas.
CREATE UNIQUE INDEX tiering_jobs_one_running ON tiering_jobs (state) WHERE state = 'running';
CREATE INDEX tiering_jobs_by_time ON tiering_jobs (created_at);

CREATE TABLE tiering_job_tenants (
    job_id TEXT NOT NULL,
    tenant_no INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    finished_at BIGINT NOT NULL,
    rollup_buckets_written BIGINT NOT NULL,
    readings_archived BIGINT NOT NULL,
    objects_written BIGINT NOT NULL,
    hot_partitions_dropped BIGINT NOT NULL,
    warm_rows_expired BIGINT NOT NULL,
    cold_objects_expired BIGINT NOT NULL,
    alert_events_expired BIGINT NOT NULL,
    -- Set when the tenant's work failed: the gRPC code and the error.
    error_code INTEGER,
    error TEXT,
    PRIMARY KEY (job_id, tenant_no)
);
