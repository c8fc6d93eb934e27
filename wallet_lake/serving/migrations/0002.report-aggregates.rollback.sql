-- Undo 0002: the report aggregates and the dirty-dt marking (curated_payments is untouched).
DROP TRIGGER IF EXISTS report_mark_deleted_dts ON curated_payments;
DROP TRIGGER IF EXISTS report_mark_left_dt ON curated_payments;
DROP FUNCTION IF EXISTS report_mark_deleted_dts();
DROP FUNCTION IF EXISTS report_mark_left_dt();
DROP TABLE IF EXISTS report_aggregate_dirty_dts, report_latency_mtd, report_latency_totals_daily,
    report_latency_daily, report_status_daily_all, report_status_daily;
