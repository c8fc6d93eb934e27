"""wallet-lake reports API (FastAPI). Serves reports from Postgres; never imports dagster or pyspark."""
