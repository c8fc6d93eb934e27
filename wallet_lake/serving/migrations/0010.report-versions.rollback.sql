-- Undo 0010: no versions (the API then has nothing to validate kept answers with; it must be
-- the one before 0010 too). CASCADE drops the function's triggers on every report table.
DROP FUNCTION IF EXISTS report_bump_versions() CASCADE;
DROP TABLE IF EXISTS report_aggregate_versions;
DROP SEQUENCE IF EXISTS report_aggregate_version_seq;
