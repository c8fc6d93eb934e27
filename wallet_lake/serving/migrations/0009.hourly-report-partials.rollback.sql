-- Undo 0009: marks per dt again, the (dt) index back, no partials.
CREATE OR REPLACE FUNCTION report_mark_inserted_dts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM inserted_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION report_mark_updated_dts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt)
    SELECT dt FROM old_rows UNION SELECT dt FROM new_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION report_mark_deleted_dts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM deleted_rows;
    RETURN NULL;
END $$;

ALTER TABLE report_aggregate_dirty_dts DROP COLUMN hour;
CREATE INDEX curated_payments_dt_idx ON curated_payments (dt);
DROP INDEX IF EXISTS curated_payments_dt_hour_idx;
DROP TABLE IF EXISTS report_latency_hourly;
DROP TABLE IF EXISTS report_status_hourly;
