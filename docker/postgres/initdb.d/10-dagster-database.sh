#!/bin/sh
# Creates the Dagster instance's database (dagster.yaml: WL_DAGSTER_PG_DB), owned by the
# application role, next to POSTGRES_DB. The postgres image runs this once, on the first start
# with an empty data volume; stack/wallet-stack does the same natively.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set db="${WL_DAGSTER_PG_DB:-dagster}" --set owner="$POSTGRES_USER" <<'SQL'
CREATE DATABASE :"db" OWNER :"owner";
SQL
