-- How far back each tenant's queries read raw hot readings: per tenant and day of the queries,
-- the age in whole days of the oldest raw hot reading one read. The cost service recommends a
-- shorter hot retention from it. Each storage process adds what its queries read, keeping the
-- larger age, so processes sharing the database do not overwrite each other.
CREATE TABLE raw_read_ages (
    tenant_id uuid NOT NULL,
    day date NOT NULL,
    age_days integer NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
