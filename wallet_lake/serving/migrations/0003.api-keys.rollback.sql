-- Undo 0003: every API key is lost.
DROP TABLE IF EXISTS api_keys;
