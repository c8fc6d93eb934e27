-- Report aggregates: per-dt pre-aggregations of curated_payments that the reports API reads,
-- so a report over a month reads a few thousand small rows instead of millions of payments.
-- Counts per row are integer (sums of int4 are fast in Postgres); amounts stay bigint. The
-- primary keys INCLUDE the measures the reports read, so that reads are index-only once
-- (auto)vacuum has marked a refreshed dt's pages all-visible.
-- They are filled and refreshed per dt by wallet_lake.serving.aggregates.refresh_report_aggregates
-- (delete + insert of the given dts in one transaction), never by a recompute of all history;
-- the SELECTs that fill them live in that module, once, shared with the lake fallback.

-- Counts and amounts per (dt, merchant, currency, status). decline_reason is the reason of
-- DECLINED rows ('unknown' when missing or empty) and '' for every other status, so that the
-- primary key needs no NULL.
CREATE TABLE report_status_daily (
    merchant_id    text   NOT NULL,
    dt             date   NOT NULL,
    currency       text   NOT NULL,
    status         text   NOT NULL,
    decline_reason text   NOT NULL,
    payment_count  integer NOT NULL CHECK (payment_count > 0),
    amount_cents   bigint NOT NULL CHECK (amount_cents >= 0),
    -- INCLUDE: reports read the index alone (index-only scans), not one heap page per day.
    PRIMARY KEY (merchant_id, dt, currency, status, decline_reason) INCLUDE (payment_count, amount_cents)
);
CREATE INDEX report_status_daily_dt_idx ON report_status_daily (dt);

-- The same over all merchants (reports asked without a merchant): a year of it is a few
-- thousand rows, where the per-merchant table would be millions.
CREATE TABLE report_status_daily_all (
    dt             date   NOT NULL,
    currency       text   NOT NULL,
    status         text   NOT NULL,
    decline_reason text   NOT NULL,
    payment_count  integer NOT NULL CHECK (payment_count > 0),
    amount_cents   bigint NOT NULL CHECK (amount_cents >= 0),
    PRIMARY KEY (dt, currency, status, decline_reason) INCLUDE (payment_count, amount_cents)
);

-- Histogram of authorized_to_complete_ms per (dt, payment_method): log-linear buckets
-- [bucket_lo, bucket_lo + bucket_width), 1 ms wide below 128 ms, 32 per power of two above.
-- Count, sum, min and max per bucket make count, mean and max exact, and bound the error of
-- percentiles (see wallet_lake.serving.aggregates). payment_method NULL is 'unknown'.
CREATE TABLE report_latency_daily (
    dt             date    NOT NULL,
    payment_method text    NOT NULL,
    bucket_lo      bigint  NOT NULL,
    bucket_width   bigint  NOT NULL CHECK (bucket_width > 0),
    payment_count  integer NOT NULL CHECK (payment_count > 0),
    sum_ms         bigint  NOT NULL,
    min_ms         bigint  NOT NULL,
    max_ms         bigint  NOT NULL,
    PRIMARY KEY (dt, payment_method, bucket_lo),
    CHECK (bucket_lo <= min_ms AND min_ms <= max_ms AND max_ms < bucket_lo + bucket_width)
);

-- Per (dt, payment_method): count, sum and max of the day (the latency report's count, mean
-- and max; its days are the dts with latency data).
CREATE TABLE report_latency_totals_daily (
    dt             date    NOT NULL,
    payment_method text    NOT NULL,
    payment_count  integer NOT NULL CHECK (payment_count > 0),
    sum_ms         bigint  NOT NULL,
    max_ms         bigint  NOT NULL,
    PRIMARY KEY (dt, payment_method) INCLUDE (payment_count, sum_ms, max_ms)
);

-- The histogram accumulated from the first day of dt's month through dt (month to date), for
-- every dt with latency data. Any range's histogram is then a signed sum of at most one such
-- day per month plus one subtracted day, instead of one day per day of the range. min_ms and
-- max_ms are the month-to-date ones (bounds, not exact, for a range that starts after the 1st).
CREATE TABLE report_latency_mtd (
    dt             date    NOT NULL,
    payment_method text    NOT NULL,
    bucket_lo      bigint  NOT NULL,
    bucket_width   bigint  NOT NULL CHECK (bucket_width > 0),
    payment_count  integer NOT NULL CHECK (payment_count > 0),
    min_ms         bigint  NOT NULL,
    max_ms         bigint  NOT NULL,
    PRIMARY KEY (dt, payment_method, bucket_lo) INCLUDE (bucket_width, payment_count, min_ms, max_ms)
);

-- dts whose aggregates may be stale for a reason the loader cannot see: a payment whose
-- surviving record moved to another dt (a refund created days later) leaves its old dt, and a
-- deleted row leaves its dt. The next refresh drains these marks (append-only, so marking never
-- waits on a refresh in progress).
CREATE TABLE report_aggregate_dirty_dts (
    id        bigserial   PRIMARY KEY,
    dt        date        NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION report_mark_left_dt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt) VALUES (OLD.dt);
    RETURN NULL;
END $$;

-- Row level, but the WHEN clause keeps the cost off the common upsert (same dt): only a record
-- that moves its payment to another dt runs the function.
CREATE TRIGGER report_mark_left_dt
    AFTER UPDATE ON curated_payments
    FOR EACH ROW WHEN (OLD.dt IS DISTINCT FROM NEW.dt)
    EXECUTE FUNCTION report_mark_left_dt();

CREATE FUNCTION report_mark_deleted_dts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM deleted_rows;
    RETURN NULL;
END $$;

CREATE TRIGGER report_mark_deleted_dts
    AFTER DELETE ON curated_payments
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_mark_deleted_dts();

-- Rows loaded before this migration: their dts are marked, so the first refresh builds them.
INSERT INTO report_aggregate_dirty_dts (dt) SELECT DISTINCT dt FROM curated_payments;
