-- The pipeline ledger: what each stage did with each landing hour, recorded by the stage itself
-- when it materializes, so that GET /reports/pipeline-recon and the asset check
-- pipeline_reconciled can show per hour that raw lines = curated + quarantined + duplicates
-- removed, published = loaded = curated, and every loaded row is counted in the reports
-- (wallet_lake/serving/ledger.py holds the stages, the rule and the SQL that reads these tables).
-- One row per (landing hour, stage), replaced when the stage runs the hour again. "counted" has
-- no row: it is computed when read, from the dts below and the aggregates' pending marks.
CREATE TABLE pipeline_ledger (
    landing_hour    timestamptz NOT NULL,
    stage           text        NOT NULL,
    -- lines for raw_lines, rows or messages for the others
    row_count       bigint      NOT NULL CHECK (row_count >= 0),
    -- The curation run (the manifest's run_id) whose output the figure describes: the curation's
    -- own for curated/quarantined/duplicates_removed, the one published or verified for
    -- published/loaded. NULL for raw_lines, which is counted before any curation.
    curation_run_id text,
    run_id          text        NOT NULL,  -- the Dagster run that recorded the row
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- loaded only: the database time by which the Postgres step had seen the hour's rows;
    -- they are counted in a dt's aggregates when no change older than this is pending there.
    verified_at     timestamptz,
    PRIMARY KEY (landing_hour, stage),
    -- ledger.STAGES (a test keeps them equal)
    CHECK (stage IN ('raw_lines', 'curated', 'quarantined', 'duplicates_removed', 'published', 'loaded')),
    CHECK ((stage = 'raw_lines') = (curation_run_id IS NULL)),
    CHECK ((stage = 'loaded') = (verified_at IS NOT NULL)),
    -- a landing hour is a whole UTC hour (the partition key)
    CHECK (date_trunc('hour', landing_hour AT TIME ZONE 'UTC') = landing_hour AT TIME ZONE 'UTC')
);

-- Where the loaded rows of a landing hour were when the Postgres step verified them: per dt of
-- their current record in curated_payments (a payment superseded by a later record, e.g. a refund
-- landed the next day, is in that record's dt). Written with the hour's loaded row.
CREATE TABLE pipeline_ledger_loaded_dts (
    landing_hour timestamptz NOT NULL,
    dt           date        NOT NULL,
    row_count    bigint      NOT NULL CHECK (row_count > 0),
    PRIMARY KEY (landing_hour, dt)
);
