-- The onboarding template (decision 0014): what a new tenant of each plan is given, encoded as
-- the contract's `OnboardingTemplate` message. One row, changed in place; `update_time` (µs
-- since the epoch) is what a change replaces, so two changes at once do not lose one.
CREATE TABLE onboarding_template (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    template BYTEA NOT NULL,
    update_time BIGINT NOT NULL
);
