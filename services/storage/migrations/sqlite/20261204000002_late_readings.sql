-- Readings that arrive for a tenant's day already archived, as on PostgreSQL: kept apart until
-- the next tiering run archives them as a further part of the day (ARCHITECTURE.md, Tiering).
CREATE TABLE late_readings (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
