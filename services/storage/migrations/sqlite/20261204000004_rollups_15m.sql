-- Quarter-hour rollups (issue 16 §5), between the minute and the hour ones: a dashboard's step
-- (a range / 500) is rarely whole hours, and whole quarters of each bucket, with minutes only
-- at its edges, read a quarter as many rows as minutes would. Rewritten from the minute
-- rollups by the rollup job, as the hour ones are; filled here from those of today.
CREATE TABLE rollups_15m (
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID;

INSERT INTO rollups_15m (series_id, bucket, min, max, sum, count, last_ts, last)
SELECT g.series_id, g.bucket, g.lo, g.hi, g.total, g.n, g.last_ts, m.last
FROM (SELECT series_id, bucket - (((bucket % 900000000) + 900000000) % 900000000) AS bucket,
             min(min) AS lo, max(max) AS hi, sum(sum) AS total, sum(count) AS n,
             max(last_ts) AS last_ts
      FROM rollups_1m
      GROUP BY 1, 2) g
JOIN rollups_1m m ON m.series_id = g.series_id
  AND m.bucket = g.last_ts - (((g.last_ts % 60000000) + 60000000) % 60000000);
