-- The report tables are vacuumed after every refresh, not after a fifth of them has changed.
-- A refresh rewrites whole hours and days by DELETE + INSERT (serving/aggregates.py), and the
-- API reads these tables by index-only scans (primary keys that INCLUDE the measures, 0002);
-- an index-only scan visits the heap for every row on a page that is not all-visible, and only a
-- vacuum marks pages so. With the default thresholds (20 % of the table's rows) a table of a
-- year of dts is vacuumed every few days, so the hours and days the reports read most were the
-- ones read through the heap: +50 % of Postgres CPU for a declines report over such pages
-- (docs/benchmarks.md, session 33), and the dead rows of every rewrite piling up meanwhile.
-- Threshold 0 and scale 0: any insert or dead row makes the table due at the next autovacuum
-- round (autovacuum_naptime). Such a vacuum reads the pages the refresh wrote (the visibility
-- map skips the rest) and skips index cleanup while few pages hold dead rows (PostgreSQL 14+).
-- The marks and versions tables are as busy: every curated change and every refresh writes them,
-- and every report reads them.
ALTER TABLE report_status_hourly SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_status_daily SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_status_daily_all SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_latency_hourly SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_latency_daily SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_latency_totals_daily SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_latency_mtd SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_aggregate_dirty_dts SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE report_aggregate_versions SET (
    autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0);
