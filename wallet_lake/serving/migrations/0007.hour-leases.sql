-- Leases on landing hours (wallet_lake/ops/hour_leases.py): at most one Dagster run works on a
-- landing hour at a time, whoever launched it. One row per hour ever leased; the row stays after
-- release so operators can see who last held an hour and whether it was taken from a dead run.
-- Held = released_at IS NULL AND expires_at > now(); times are the database's clock_timestamp().
CREATE TABLE landing_hour_leases (
    landing_hour    timestamptz PRIMARY KEY
                    CHECK (date_trunc('hour', landing_hour AT TIME ZONE 'UTC') = landing_hour AT TIME ZONE 'UTC'),
    holder          text        NOT NULL,  -- Dagster run id of the (last) holder
    holder_detail   text,                  -- where it works: asset step, pid, host
    acquired_at     timestamptz NOT NULL,  -- first taken by this holder
    heartbeat_at    timestamptz NOT NULL,  -- last renewal
    expires_at      timestamptz NOT NULL,  -- without a renewal by then, the holder is presumed dead
    released_at     timestamptz,           -- let go by the holder (NULL: held until expires_at)
    previous_holder text,                  -- the run this holder took the hour from without a release
    takeover_reason text,                  -- why that was allowed (expired, or the run had finished)
    CHECK (expires_at >= heartbeat_at AND heartbeat_at >= acquired_at)
);
-- Operators' view: what is held now.
CREATE INDEX landing_hour_leases_held_idx ON landing_hour_leases (expires_at) WHERE released_at IS NULL;
