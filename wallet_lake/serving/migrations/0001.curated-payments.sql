-- curated_payments: current state of every payment, one row per payment_id, filled by the
-- Kafka Connect JDBC sink from payments.curated. Columns mirror wallet_lake.contracts.schema
-- (a test compares them). Created here, never by the sink (schema.evolution=none).
CREATE TABLE curated_payments (
    payment_id                text PRIMARY KEY,
    merchant_id               text NOT NULL,
    user_id                   text,
    amount_cents              bigint NOT NULL CHECK (amount_cents >= 0),
    currency                  text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                    text NOT NULL,
    payment_method            text,
    risk_score                double precision,
    authorized_at             timestamp with time zone,
    completed_at              timestamp with time zone,
    created_at                timestamp with time zone NOT NULL,
    source_system             text,
    decline_reason            text,
    dt                        date NOT NULL,
    hour                      integer NOT NULL CHECK (hour BETWEEN 0 AND 23),
    authorized_to_complete_ms bigint,
    is_approved               boolean NOT NULL,
    is_refunded               boolean NOT NULL,
    processed_at              timestamp with time zone NOT NULL,
    curated_version           integer NOT NULL
);

CREATE INDEX curated_payments_merchant_dt_idx ON curated_payments (merchant_id, dt);
CREATE INDEX curated_payments_dt_idx ON curated_payments (dt);

-- Lifecycle order of statuses (wallet_lake.contracts.lifecycle.LIFECYCLE_RANK; a test keeps
-- them equal). Unknown statuses raise: the curated contract only admits accepted ones.
CREATE FUNCTION payment_lifecycle_rank(status text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE status
        WHEN 'PENDING' THEN 0
        WHEN 'APPROVED' THEN 1
        WHEN 'DECLINED' THEN 1
        WHEN 'FAILED' THEN 1
        WHEN 'CANCELLED' THEN 1
        WHEN 'REFUNDED' THEN 2
        WHEN 'CHARGEBACK' THEN 3
    END;
END $$;

-- Replays and out-of-order delivery must never regress a row, whichever loader writes: an
-- update only applies when the incoming record is at least as new as the stored one under the
-- dedupe order (created_at, then lifecycle rank). Returning NULL skips the update silently,
-- which is what an upsert of an older state should do.
CREATE FUNCTION curated_payments_keep_newest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.created_at, payment_lifecycle_rank(NEW.status))
       < (OLD.created_at, payment_lifecycle_rank(OLD.status)) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER curated_payments_keep_newest
    BEFORE UPDATE ON curated_payments
    FOR EACH ROW EXECUTE FUNCTION curated_payments_keep_newest();
