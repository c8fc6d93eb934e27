-- Undo 0004: report amounts back to bigint (fails while a dt's sum exceeds it: delete that dt's
-- rows of report_status_daily and report_status_daily_all first), no status CHECK, and the
-- trigger function of 0001 (created_at, then lifecycle rank; equal pairs update). The rank
-- function keeps 0004's body: it raises on an unknown status, as 0001 documented it would.
ALTER TABLE report_status_daily_all ALTER COLUMN amount_cents TYPE bigint;
ALTER TABLE report_status_daily ALTER COLUMN amount_cents TYPE bigint;
ALTER TABLE curated_payments DROP CONSTRAINT IF EXISTS curated_payments_status_accepted;
CREATE OR REPLACE FUNCTION curated_payments_keep_newest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.created_at, payment_lifecycle_rank(NEW.status))
       < (OLD.created_at, payment_lifecycle_rank(OLD.status)) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
