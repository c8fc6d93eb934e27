-- The report tables (serving/pg_roles.py REPORT_TABLES) are vacuumed after every refresh, not
-- after a fifth of them has changed. A refresh rewrites whole days by DELETE + INSERT
-- (serving/aggregates.py), and reports read these tables by index-only scans (primary keys that
-- INCLUDE the measures, 0002), which visit the heap for every row on a page that is not
-- all-visible; only a vacuum marks pages so. With the default thresholds (20 % of the rows) a
-- table of a year of dts waits days for a vacuum, so the days the reports read most were read
-- through the heap: +50 % of Postgres CPU for a declines statement over such pages
-- (docs/benchmarks.md, session 33), with every rewrite's dead rows piling up meanwhile.
-- - Thresholds 0, scale factors 0: any insert or dead row makes the table due; autovacuum takes
--   it within a round or two (autovacuum_naptime; statistics reach it up to ~10 s late).
-- - vacuum_index_cleanup on: PostgreSQL 14+ otherwise skips index vacuuming when under 2 % of
--   the pages hold dead rows (every one-day rewrite of a long table), and a page whose dead line
--   pointers stay is not marked all-visible. So each vacuum reads the heap pages not yet
--   all-visible and every index in full: ~0.1 s for the 433k-row report_status_daily of the
--   benchmark database.
-- - While a snapshot older than the refresh is open (a long transaction, a backup), the dead rows
--   stay and the table is vacuumed again each round until it ends.
-- - The hourly partials (0009), which only the refresh reads, and the marks and versions tables,
--   which reports read through the heap anyway, keep the server's settings.
-- A TRUNCATE that waits for such a vacuum cancels it after deadlock_timeout; with 0010's advice
-- (lock_timeout below deadlock_timeout) retry it.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['report_status_daily', 'report_status_daily_all', 'report_latency_daily',
                             'report_latency_totals_daily', 'report_latency_mtd'] LOOP
        EXECUTE format(
            'ALTER TABLE public.%I SET ('
            'autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0, '
            'autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0, '
            'vacuum_index_cleanup = on)', t);
    END LOOP;
END $$;
