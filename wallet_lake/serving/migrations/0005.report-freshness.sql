-- Reports that are never silently stale: every change to curated_payments marks its dt in
-- report_aggregate_dirty_dts, in the same transaction as the change (inserts, updates old and
-- new dt, deletes, truncates), so a refresher (wallet_lake/defs/serving/aggregates_refresher.py)
-- can bring the aggregates up to date without anyone rerunning a partition, and a report can say
-- how fresh it is: the aggregates reflect every change committed before the oldest pending
-- mark of the dts it reads (wallet_lake.serving.aggregates.AS_OF_SQL).
--
-- Statement-level triggers with transition tables: the sink's batched upserts (one multi-row
-- INSERT ... ON CONFLICT DO UPDATE per rewritten JDBC batch) pay one small insert per statement
-- and dt, not one per row. Rows the no-regression trigger skips (an older replayed state) are in
-- no transition table, so a replay marks nothing. Marks stay append-only: marking never waits on
-- a refresh in progress (refreshes delete marks with SKIP LOCKED).

-- Replaced by report_mark_updated_dts, which marks the old and the new dt of every update.
DROP TRIGGER IF EXISTS report_mark_left_dt ON curated_payments;
DROP FUNCTION IF EXISTS report_mark_left_dt();

-- Reads by dt range: a report's freshness (min(marked_at) of its dts) and the drain of a batch.
CREATE INDEX report_aggregate_dirty_dts_dt_idx ON report_aggregate_dirty_dts (dt, marked_at);

CREATE FUNCTION report_mark_inserted_dts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM inserted_rows;
    RETURN NULL;
END $$;

CREATE TRIGGER report_mark_inserted_dts
    AFTER INSERT ON curated_payments
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_mark_inserted_dts();

-- Old and new dt: a payment whose surviving record moved (a refund days later) leaves one dt and
-- joins another; a status change within a dt changes that dt's aggregates.
CREATE FUNCTION report_mark_updated_dts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt)
    SELECT dt FROM old_rows UNION SELECT dt FROM new_rows;
    RETURN NULL;
END $$;

CREATE TRIGGER report_mark_updated_dts
    AFTER UPDATE ON curated_payments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_mark_updated_dts();

-- TRUNCATE has no transition table: mark every dt the aggregates hold, so they are emptied too.
CREATE FUNCTION report_mark_truncated_dts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt)
    SELECT dt FROM report_status_daily_all UNION SELECT dt FROM report_latency_totals_daily;
    RETURN NULL;
END $$;

CREATE TRIGGER report_mark_truncated_dts
    AFTER TRUNCATE ON curated_payments
    FOR EACH STATEMENT EXECUTE FUNCTION report_mark_truncated_dts();

-- Rows loaded before this migration whose refresh never ran (the Postgres step failed after the
-- sink loaded them) were marked by nothing: mark every dt once, the refresher rebuilds them.
INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM curated_payments;
