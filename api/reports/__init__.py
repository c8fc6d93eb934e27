"""Reports: SQL text (sql.py, one place for Postgres and the lake), where it runs (source.py), and
one module per report that picks the statement and shapes the answer."""
