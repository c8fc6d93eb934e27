-- The queries of curated_payments_index_use.sql (run there with and without an index).
-- serving/aggregates.py refresh_report_aggregates: the rows of the dts to refresh
EXPLAIN SELECT * FROM wl_explain_cp WHERE dt = ANY('{2025-03-01,2025-03-02}'::date[]);
-- serving/aggregates.py --all: every dt
EXPLAIN SELECT DISTINCT dt FROM wl_explain_cp;
-- serving/verify.py, serving/ledger.py: an hour's payment_ids
EXPLAIN SELECT payment_id, created_at, dt FROM wl_explain_cp WHERE payment_id = ANY('{p000000001,p000000002}'::text[]);
-- a merchant + day lookup, which no code issues (ad hoc only)
EXPLAIN ANALYZE SELECT count(*) FROM wl_explain_cp WHERE merchant_id = 'merchant-0007' AND dt = '2025-03-01';
