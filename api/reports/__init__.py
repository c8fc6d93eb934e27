"""Reports: SQL text (sql.py, engine-neutral) and per-report runners that shape the answer."""
