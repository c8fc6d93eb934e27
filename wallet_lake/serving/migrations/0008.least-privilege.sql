-- Least privilege (wallet_lake/serving/pg_roles.py): each service logs in as a role of its own.
--
-- The sink may write curated_payments only, yet its statements fire triggers that mark dirty dts
-- in report_aggregate_dirty_dts (migration 0005). Those trigger functions therefore run as their
-- owner (SECURITY DEFINER), with a fixed search_path so a caller cannot redirect what they touch.
ALTER FUNCTION report_mark_inserted_dts() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION report_mark_updated_dts() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION report_mark_truncated_dts() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION report_mark_deleted_dts() SECURITY DEFINER SET search_path = public, pg_temp;

-- The API reads no api_keys row at will: it asks for one key id at a time and gets the hash and
-- the scope, never the label or the other keys (a leaked API role cannot list keys).
CREATE FUNCTION api_key_lookup(p_key_id text)
RETURNS TABLE (key_sha256 bytea, all_merchants boolean, merchant_ids text[], revoked boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.key_sha256, k.all_merchants, k.merchant_ids, k.revoked_at IS NOT NULL
    FROM public.api_keys AS k WHERE k.key_id = p_key_id
$$;
REVOKE ALL ON FUNCTION api_key_lookup(text) FROM PUBLIC;
