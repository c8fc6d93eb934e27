-- Issue 11: one latest-record order everywhere, statuses checked in the database, and report
-- amounts summed exactly.
--
-- The block below is rendered from wallet_lake/contracts (lifecycle.py, ordering.py) and must
-- stay byte for byte what `python -m wallet_lake.serving.contract_sql` prints for the current
-- contracts (a test compares); after a contract change, add a new migration with that output.
-- Adding the CHECK fails when curated_payments already holds a status the contract does not
-- accept: find such rows with
--   SELECT status, count(*) FROM curated_payments GROUP BY 1;
-- and fix or delete them first.

-- BEGIN rendered by `python -m wallet_lake.serving.contract_sql`: edit wallet_lake/contracts, not this block

-- Lifecycle rank of a status (contracts.lifecycle.LIFECYCLE_RANK). An unknown status raises: the
-- curated contract admits only the accepted ones.
CREATE OR REPLACE FUNCTION payment_lifecycle_rank(status text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    CASE status
        WHEN 'PENDING' THEN RETURN 0;
        WHEN 'APPROVED' THEN RETURN 1;
        WHEN 'DECLINED' THEN RETURN 1;
        WHEN 'FAILED' THEN RETURN 1;
        WHEN 'CANCELLED' THEN RETURN 1;
        WHEN 'REFUNDED' THEN RETURN 2;
        WHEN 'CHARGEBACK' THEN RETURN 3;
        ELSE RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            MESSAGE = format('unknown payment status %L', status),
            HINT = 'accepted statuses (wallet_lake.contracts.lifecycle): PENDING, APPROVED, DECLINED, FAILED, CANCELLED, REFUNDED, CHARGEBACK';
    END CASE;
END $$;

-- Only accepted statuses (contracts.lifecycle.ACCEPTED_STATUSES), whichever loader writes.
ALTER TABLE curated_payments DROP CONSTRAINT IF EXISTS curated_payments_status_accepted;
ALTER TABLE curated_payments ADD CONSTRAINT curated_payments_status_accepted CHECK (status IN ('PENDING', 'APPROVED', 'DECLINED', 'FAILED', 'CANCELLED', 'REFUNDED', 'CHARGEBACK'));

-- No regression, whichever loader writes: an update applies only when the incoming record comes
-- strictly before the stored one in the latest-record order (contracts.ordering.LATEST_FIRST,
-- the order of the Spark dedupe and of the lake's latest view). Returning NULL skips the update
-- silently: an older record, or the stored record itself (equal under the order means equal in
-- every column), leaves the row as it is. The status is checked first, so an unknown one is an
-- error even in an older record.
CREATE OR REPLACE FUNCTION curated_payments_keep_newest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM payment_lifecycle_rank(NEW.status);
    -- Parenthesized: PL/pgSQL ends an IF condition at the first THEN outside parentheses.
    IF (CASE
        WHEN date_trunc('milliseconds', NEW.created_at) IS DISTINCT FROM date_trunc('milliseconds', OLD.created_at) THEN date_trunc('milliseconds', NEW.created_at) > date_trunc('milliseconds', OLD.created_at)
        WHEN payment_lifecycle_rank(NEW.status) IS DISTINCT FROM payment_lifecycle_rank(OLD.status) THEN payment_lifecycle_rank(NEW.status) > payment_lifecycle_rank(OLD.status)
        WHEN NEW.curated_version IS DISTINCT FROM OLD.curated_version THEN NEW.curated_version > OLD.curated_version
        WHEN NEW.status COLLATE "C" IS DISTINCT FROM OLD.status COLLATE "C" THEN NEW.status COLLATE "C" > OLD.status COLLATE "C"
        WHEN NEW.amount_cents IS DISTINCT FROM OLD.amount_cents THEN NEW.amount_cents > OLD.amount_cents
        WHEN NEW.currency COLLATE "C" IS DISTINCT FROM OLD.currency COLLATE "C" THEN NEW.currency COLLATE "C" > OLD.currency COLLATE "C"
        WHEN NEW.merchant_id COLLATE "C" IS DISTINCT FROM OLD.merchant_id COLLATE "C" THEN NEW.merchant_id COLLATE "C" > OLD.merchant_id COLLATE "C"
        WHEN NEW.user_id COLLATE "C" IS DISTINCT FROM OLD.user_id COLLATE "C" THEN coalesce(NEW.user_id COLLATE "C" > OLD.user_id COLLATE "C", OLD.user_id COLLATE "C" IS NULL)
        WHEN NEW.payment_method COLLATE "C" IS DISTINCT FROM OLD.payment_method COLLATE "C" THEN coalesce(NEW.payment_method COLLATE "C" > OLD.payment_method COLLATE "C", OLD.payment_method COLLATE "C" IS NULL)
        WHEN NEW.risk_score IS DISTINCT FROM OLD.risk_score THEN coalesce(NEW.risk_score > OLD.risk_score, OLD.risk_score IS NULL)
        WHEN date_trunc('milliseconds', NEW.authorized_at) IS DISTINCT FROM date_trunc('milliseconds', OLD.authorized_at) THEN coalesce(date_trunc('milliseconds', NEW.authorized_at) > date_trunc('milliseconds', OLD.authorized_at), date_trunc('milliseconds', OLD.authorized_at) IS NULL)
        WHEN date_trunc('milliseconds', NEW.completed_at) IS DISTINCT FROM date_trunc('milliseconds', OLD.completed_at) THEN coalesce(date_trunc('milliseconds', NEW.completed_at) > date_trunc('milliseconds', OLD.completed_at), date_trunc('milliseconds', OLD.completed_at) IS NULL)
        WHEN NEW.source_system COLLATE "C" IS DISTINCT FROM OLD.source_system COLLATE "C" THEN coalesce(NEW.source_system COLLATE "C" > OLD.source_system COLLATE "C", OLD.source_system COLLATE "C" IS NULL)
        WHEN NEW.decline_reason COLLATE "C" IS DISTINCT FROM OLD.decline_reason COLLATE "C" THEN coalesce(NEW.decline_reason COLLATE "C" > OLD.decline_reason COLLATE "C", OLD.decline_reason COLLATE "C" IS NULL)
        WHEN NEW.authorized_to_complete_ms IS DISTINCT FROM OLD.authorized_to_complete_ms THEN coalesce(NEW.authorized_to_complete_ms > OLD.authorized_to_complete_ms, OLD.authorized_to_complete_ms IS NULL)
        WHEN NEW.dt IS DISTINCT FROM OLD.dt THEN NEW.dt > OLD.dt
        WHEN NEW.hour IS DISTINCT FROM OLD.hour THEN NEW.hour > OLD.hour
        WHEN NEW.is_approved IS DISTINCT FROM OLD.is_approved THEN NEW.is_approved > OLD.is_approved
        WHEN NEW.is_refunded IS DISTINCT FROM OLD.is_refunded THEN NEW.is_refunded > OLD.is_refunded
        WHEN date_trunc('milliseconds', NEW.processed_at) IS DISTINCT FROM date_trunc('milliseconds', OLD.processed_at) THEN date_trunc('milliseconds', NEW.processed_at) > date_trunc('milliseconds', OLD.processed_at)
        WHEN NEW.created_at IS DISTINCT FROM OLD.created_at THEN NEW.created_at > OLD.created_at
        WHEN NEW.authorized_at IS DISTINCT FROM OLD.authorized_at THEN coalesce(NEW.authorized_at > OLD.authorized_at, OLD.authorized_at IS NULL)
        WHEN NEW.completed_at IS DISTINCT FROM OLD.completed_at THEN coalesce(NEW.completed_at > OLD.completed_at, OLD.completed_at IS NULL)
        WHEN NEW.processed_at IS DISTINCT FROM OLD.processed_at THEN NEW.processed_at > OLD.processed_at
        ELSE false
    END) THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END $$;

-- END rendered by `python -m wallet_lake.serving.contract_sql`

-- Amounts of the report aggregates are exact sums of any number of int64 amount_cents: one
-- extreme amount (the contract admits up to 9223372036854775807) must not overflow a dt's sums.
-- wallet_lake.serving.aggregates sums them as DECIMAL(38,0) on every engine (Postgres, DuckDB,
-- Trino, whose sum(bigint) overflows).
ALTER TABLE report_status_daily ALTER COLUMN amount_cents TYPE numeric(38, 0);
ALTER TABLE report_status_daily_all ALTER COLUMN amount_cents TYPE numeric(38, 0);
