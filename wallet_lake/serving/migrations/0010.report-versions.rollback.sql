-- Undo 0010: no versions (the API then has nothing to validate cached answers with; it must be
-- the one before 0010 too).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['report_status_daily', 'report_status_daily_all', 'report_latency_daily',
                             'report_latency_totals_daily', 'report_latency_mtd'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS report_bump_inserted_versions ON %I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS report_bump_updated_versions ON %I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS report_bump_deleted_versions ON %I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS report_bump_truncated_versions ON %I', t);
    END LOOP;
END $$;
DROP FUNCTION IF EXISTS report_bump_versions();
DROP TABLE IF EXISTS report_aggregate_versions;
DROP SEQUENCE IF EXISTS report_aggregate_version_seq;
