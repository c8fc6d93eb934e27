-- Which index of curated_payments each query of the code base uses (issue 14, sink avenue
-- "fewer indexes touched per upsert"). Run as the schema owner on a scratch copy:
--   psql ... -f bench/sql/curated_payments_index_use.sql
-- 1,000,000 rows over 301 dts and 400 merchants, then the plans with and without the
-- (merchant_id, dt) index.
CREATE TABLE wl_explain_cp (LIKE curated_payments INCLUDING ALL);
INSERT INTO wl_explain_cp
SELECT 'p' || lpad(i::text, 9, '0'), 'merchant-' || lpad((i*7 % 400)::text, 4, '0'), 'user-' || (i % 200000), (i*17 % 500000), 'EUR', 'APPROVED', 'card', 0.5,
       ts, ts, ts, 'processor-eu', NULL, (ts AT TIME ZONE 'UTC')::date, extract(hour from ts AT TIME ZONE 'UTC')::int, 1050, true, false, now(), 1
FROM (SELECT i, timestamptz '2025-01-01 00:00:00+00' + (i * interval '26 seconds') AS ts FROM generate_series(1, 1000000) i) s;
ANALYZE wl_explain_cp;
\echo '== with both secondary indexes'
\ir curated_payments_index_queries.sql
DROP INDEX wl_explain_cp_merchant_id_dt_idx;
\echo '== without (merchant_id, dt)'
\ir curated_payments_index_queries.sql
DROP TABLE wl_explain_cp;
