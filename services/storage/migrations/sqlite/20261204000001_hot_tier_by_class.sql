-- The tenant's days in the hot tier record their hot retention class, as on PostgreSQL
-- (docs/decisions/0002-hot-tier-layout.md). SQLite keeps one readings table: the class
-- changes nothing else here. Days recorded before are class 0 ("before classes").
ALTER TABLE hot_partitions RENAME TO hot_days;
ALTER TABLE hot_days ADD COLUMN class INTEGER NOT NULL DEFAULT 0;
