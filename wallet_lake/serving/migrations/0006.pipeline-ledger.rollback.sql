-- Undo 0006: the pipeline ledger is lost (stages record it again when they next run an hour).
DROP TABLE IF EXISTS pipeline_ledger_loaded_dts, pipeline_ledger;
