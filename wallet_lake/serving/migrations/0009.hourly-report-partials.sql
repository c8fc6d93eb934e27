-- Report aggregates refreshed per hour (wallet_lake/serving/aggregates.py): a load changes a few
-- (dt, hour)s of curated_payments, yet the daily aggregates were recomputed from every row of
-- the dt: 5-6 s for a 6M-row dt, growing with the day (a busy day holds ~24M rows). Now the
-- per-payment relations are also kept per (dt, hour) of the curated rows, a refresh recomputes
-- only the hours changed, and the daily rows are rolled up from at most 24 partials per dt
-- (exact: counts and amounts add up, min of mins, max of maxes).
--
-- Marks name the hour too (NULL: every hour of the dt, e.g. a TRUNCATE or a hand refresh).

-- Partials: the same columns as the daily tables, plus the hour. Only the pipeline reads them.
CREATE TABLE report_status_hourly (
    dt             date     NOT NULL,
    hour           smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    merchant_id    text     NOT NULL,
    currency       text     NOT NULL,
    status         text     NOT NULL,
    decline_reason text     NOT NULL,
    payment_count  integer  NOT NULL CHECK (payment_count > 0),
    amount_cents   numeric(38, 0) NOT NULL CHECK (amount_cents >= 0),
    PRIMARY KEY (dt, hour, merchant_id, currency, status, decline_reason)
);

CREATE TABLE report_latency_hourly (
    dt             date     NOT NULL,
    hour           smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    payment_method text     NOT NULL,
    bucket_lo      bigint   NOT NULL,
    bucket_width   bigint   NOT NULL CHECK (bucket_width > 0),
    payment_count  integer  NOT NULL CHECK (payment_count > 0),
    sum_ms         bigint   NOT NULL,
    min_ms         bigint   NOT NULL,
    max_ms         bigint   NOT NULL,
    PRIMARY KEY (dt, hour, payment_method, bucket_lo),
    CHECK (bucket_lo <= min_ms AND min_ms <= max_ms AND max_ms < bucket_lo + bucket_width)
);

-- The refresh reads curated rows by (dt, hour), and by dt for whole-dt marks: one index serves
-- both, so (dt) goes (one index fewer for the sink's upserts to maintain). This transaction
-- blocks the sink's writes while it builds the index: on a large table, build it beforehand with
-- CREATE INDEX CONCURRENTLY under this name, and this statement keeps it.
CREATE INDEX IF NOT EXISTS curated_payments_dt_hour_idx ON curated_payments (dt, hour);
DROP INDEX IF EXISTS curated_payments_dt_idx;

ALTER TABLE report_aggregate_dirty_dts ADD COLUMN hour smallint CHECK (hour BETWEEN 0 AND 23);

-- The marking triggers of 0005, now with the hour (still statement level, SECURITY DEFINER as
-- 0008 made them: the sink's role writes no marks table itself).
CREATE OR REPLACE FUNCTION report_mark_inserted_dts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt, hour) SELECT DISTINCT dt, hour FROM inserted_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION report_mark_updated_dts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt, hour)
    SELECT dt, hour FROM old_rows UNION SELECT dt, hour FROM new_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION report_mark_deleted_dts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt, hour) SELECT DISTINCT dt, hour FROM deleted_rows;
    RETURN NULL;
END $$;

-- The partials start empty: every dt is marked whole, so its first refresh builds all its hours
-- (a refresh holds its months' locks and drains every mark of its dts, whole-dt ones included,
-- before it rolls a dt up: serving/aggregates.py). The refresher sensor rebuilds them in batches
-- of WL_AGGREGATES_REFRESH_BATCH_DTS dts; a Postgres step that comes first takes them all.
INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM curated_payments;
