-- Quarter-hour rollups (issue 16 §5), between the minute and the hour ones: a dashboard's step
-- (a range / 500) is rarely whole hours, and whole quarters of each bucket, with minutes only
-- at its edges, read a quarter as many rows as minutes would. Rewritten from the minute
-- rollups by the rollup job, as the hour ones are; filled here from those of today.
CREATE TABLE rollups_15m (LIKE rollups_1m INCLUDING ALL);

INSERT INTO rollups_15m (series_id, bucket, min, max, sum, count, last_ts, last)
SELECT series_id, date_bin('15 minutes', bucket, 'epoch'), min(min), max(max), sum(sum),
       sum(count)::int8, max(last_ts), (array_agg(last ORDER BY last_ts DESC))[1]
FROM rollups_1m
GROUP BY 1, 2;
