-- Provisioning runs and their steps (decision 0014). A run is claimed by one worker at a time
-- through a lease (`owner`, `lease_until`, µs since the epoch); a worker that dies leaves its
-- lease to expire, and the next claims the run and resumes at the step it was in. Each step's
-- state is stored before it runs (`running`, `attempts` + 1) and after.
CREATE TABLE provisioning_runs (
    run_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'rolling_back', 'rolled_back')),
    owner TEXT,
    lease_until BIGINT,
    -- When the run may next be worked on: a step that failed with a retryable error waits.
    not_before BIGINT NOT NULL,
    -- Whether the tenant service was told how the run ended (SetProvisioningOutcome); a run
    -- that ended and was not is claimed again to tell it.
    reported BOOLEAN NOT NULL DEFAULT FALSE,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX provisioning_runs_of_tenant ON provisioning_runs (tenant_id, run_id);
CREATE INDEX provisioning_runs_to_work ON provisioning_runs (not_before)
    WHERE state IN ('pending', 'running', 'rolling_back') OR NOT reported;

CREATE TABLE provisioning_steps (
    run_id TEXT NOT NULL REFERENCES provisioning_runs (run_id),
    ordinal BIGINT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'rolled_back')),
    attempts BIGINT NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    start_time BIGINT,
    end_time BIGINT,
    PRIMARY KEY (run_id, ordinal)
);
