-- Undo 0005: back to 0002's marking (a dt a payment left, and deleted rows' dts).
DROP TRIGGER IF EXISTS report_mark_truncated_dts ON curated_payments;
DROP TRIGGER IF EXISTS report_mark_updated_dts ON curated_payments;
DROP TRIGGER IF EXISTS report_mark_inserted_dts ON curated_payments;
DROP FUNCTION IF EXISTS report_mark_truncated_dts();
DROP FUNCTION IF EXISTS report_mark_updated_dts();
DROP FUNCTION IF EXISTS report_mark_inserted_dts();
DROP INDEX IF EXISTS report_aggregate_dirty_dts_dt_idx;

CREATE FUNCTION report_mark_left_dt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt) VALUES (OLD.dt);
    RETURN NULL;
END $$;

CREATE TRIGGER report_mark_left_dt
    AFTER UPDATE ON curated_payments
    FOR EACH ROW WHEN (OLD.dt IS DISTINCT FROM NEW.dt)
    EXECUTE FUNCTION report_mark_left_dt();
