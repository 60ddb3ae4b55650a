-- Hot retention rounds up to a class (mfg_common::retention::HOT_CLASSES): tenants of one
-- class share the hot tier's day partitions (docs/decisions/0002-hot-tier-layout.md).
UPDATE tenants SET hot_days = (
    SELECT min(class) FROM unnest(ARRAY[1, 2, 3, 7, 14, 30, 60, 90, 180, 365, 730, 1825, 3650, 36500]) AS class
    WHERE class >= tenants.hot_days)
WHERE hot_days NOT IN (1, 2, 3, 7, 14, 30, 60, 90, 180, 365, 730, 1825, 3650, 36500) AND hot_days <= 36500;
