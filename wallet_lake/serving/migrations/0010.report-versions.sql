-- A version per dt of the report aggregates, so the API may keep answers it has computed and
-- reuse one only while every dt it read is unchanged (api/reports/answer_cache.py). Statement
-- triggers on every report table give each dt a statement touches a fresh value of one sequence,
-- whoever writes (the refresh, a hand fix, a test). Values are never reused, so a dt's version is
-- equal to an earlier reading only if no write to that dt committed in between; the API compares
-- the versions of all dts an answer read, in the same statement (snapshot) as the answer's as_of.
-- The functions run as their owner (SECURITY DEFINER, as in 0008): the pipeline's role writes
-- the report tables but not this one. Writes that fire no triggers (session_replication_role =
-- replica, disabled triggers) move no versions: never write the report tables that way while an
-- API runs. The API also compares an epoch (the sequence's identity and the server's start), so a
-- sequence re-created or a server restored from a backup never matches answers kept before.
-- TRUNCATE locks its table, then every version row: with a refresh running it can deadlock;
-- truncate with lock_timeout below deadlock_timeout, or while no refresh runs.
CREATE SEQUENCE report_aggregate_version_seq;

CREATE TABLE report_aggregate_versions (
    dt      date   PRIMARY KEY,
    version bigint NOT NULL
);

-- One function for every trigger: the dts of the statement's transition tables (which ones
-- exist depends on the operation, hence the dynamic statement), in dt order, so two writers of
-- overlapping dts lock the version rows in the same order. TRUNCATE names no rows: every dt that
-- ever held one has a version row, so all of them move.
CREATE FUNCTION report_bump_versions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE report_aggregate_versions SET version = nextval('report_aggregate_version_seq')
        WHERE dt IN (SELECT dt FROM report_aggregate_versions ORDER BY dt FOR UPDATE);
        RETURN NULL;
    END IF;
    EXECUTE format(
        'INSERT INTO report_aggregate_versions (dt, version) '
        'SELECT d.dt, nextval(''report_aggregate_version_seq'') FROM (%s ORDER BY dt) AS d '
        'ON CONFLICT (dt) DO UPDATE SET version = EXCLUDED.version',
        CASE TG_OP WHEN 'INSERT' THEN 'SELECT DISTINCT dt FROM new_rows'
                   WHEN 'DELETE' THEN 'SELECT DISTINCT dt FROM old_rows'
                   ELSE 'SELECT dt FROM old_rows UNION SELECT dt FROM new_rows' END);
    RETURN NULL;
END $$;

-- A trigger function only: nobody calls it directly.
REVOKE EXECUTE ON FUNCTION report_bump_versions() FROM PUBLIC;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['report_status_daily', 'report_status_daily_all', 'report_latency_daily',
                             'report_latency_totals_daily', 'report_latency_mtd'] LOOP
        EXECUTE format('CREATE TRIGGER report_bump_inserted_versions AFTER INSERT ON %I '
                       'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_bump_versions()', t);
        EXECUTE format('CREATE TRIGGER report_bump_updated_versions AFTER UPDATE ON %I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION report_bump_versions()', t);
        EXECUTE format('CREATE TRIGGER report_bump_deleted_versions AFTER DELETE ON %I '
                       'REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_bump_versions()', t);
        EXECUTE format('CREATE TRIGGER report_bump_truncated_versions AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION report_bump_versions()', t);
    END LOOP;
END $$;

-- The dts that already hold aggregates start at a version of their own.
INSERT INTO report_aggregate_versions (dt, version)
SELECT d.dt, nextval('report_aggregate_version_seq')
FROM (SELECT dt FROM report_status_daily UNION SELECT dt FROM report_status_daily_all
      UNION SELECT dt FROM report_latency_daily UNION SELECT dt FROM report_latency_totals_daily
      UNION SELECT dt FROM report_latency_mtd ORDER BY dt) AS d;
