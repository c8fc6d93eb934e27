-- Undo 0008: the API then needs SELECT on api_keys again.
DROP FUNCTION IF EXISTS api_key_lookup(text);
ALTER FUNCTION report_mark_inserted_dts() SECURITY INVOKER RESET search_path;
ALTER FUNCTION report_mark_updated_dts() SECURITY INVOKER RESET search_path;
ALTER FUNCTION report_mark_truncated_dts() SECURITY INVOKER RESET search_path;
ALTER FUNCTION report_mark_deleted_dts() SECURITY INVOKER RESET search_path;
