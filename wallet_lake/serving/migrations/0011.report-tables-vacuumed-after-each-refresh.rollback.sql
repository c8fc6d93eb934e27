-- Undo 0011: the server's autovacuum settings for the report tables again.
ALTER TABLE report_status_daily RESET (
    autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor,
    vacuum_index_cleanup);
ALTER TABLE report_status_daily_all RESET (
    autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor,
    vacuum_index_cleanup);
ALTER TABLE report_latency_daily RESET (
    autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor,
    vacuum_index_cleanup);
ALTER TABLE report_latency_totals_daily RESET (
    autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor,
    vacuum_index_cleanup);
ALTER TABLE report_latency_mtd RESET (
    autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor,
    vacuum_index_cleanup);
