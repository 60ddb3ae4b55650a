-- Hot retention rounds up to a class (mfg_common::retention::HOT_CLASSES): tenants of one
-- class share the hot tier's day partitions (docs/decisions/0002-hot-tier-layout.md).
WITH classes(class) AS (VALUES (1), (2), (3), (7), (14), (30), (60), (90), (180), (365), (730), (1825), (3650), (36500))
UPDATE tenants SET hot_days = (SELECT min(class) FROM classes WHERE class >= tenants.hot_days)
WHERE hot_days NOT IN (SELECT class FROM classes) AND hot_days <= 36500;
