"""Postgres roles of wallet-lake, one per duty, and the exact privileges each holds.

The single source of who may do what in Postgres: provisioning (serving/pg_provision.py) creates
the login roles and renders the GRANTs from here; the security tests check every role against
these tables both ways (allowed, and refused outside them). Role names are settings
(wallet_lake/settings.py PostgresSettings); passwords are secrets (SecretSettings) resolved by
wallet_lake.security.secrets (environment, or Secrets Manager through NAME_SECRET_ID).

Tables are the serving schema's (migrations/); a table added by a migration is readable by no
duty until it is listed here."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from wallet_lake.settings import PostgresSettings, SecretSettings, env_name


@dataclass(frozen=True)
class PgRole:
    duty: str
    user_field: str  # PostgresSettings field naming the login role (wallet_lake/settings.py)
    password_field: str  # SecretSettings field of its password
    doc: str
    database: str = "serving"  # "serving" (WL_PG_DB) or "dagster" (WL_DAGSTER_PG_DB)
    # table -> privileges, on the serving database's public schema
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # functions it may execute beyond those every role may (trigger functions run as their owner)
    functions: tuple[str, ...] = ()
    # TEMPORARY on its database: session temp tables, which no other role may create
    temporary: bool = False

    @property
    def user_env(self) -> str:
        return env_name(PostgresSettings, self.user_field)

    @property
    def password_env(self) -> str:
        """The secret's name (security/secrets.py resolves it, possibly from Secrets Manager)."""
        return env_name(SecretSettings, self.password_field)


# The report relations' tables (migration 0002): the reports read them by index-only scans (the
# refresh alone reads report_latency_daily); migration 0011 has them vacuumed after every refresh.
REPORT_TABLES = (
    "report_status_daily", "report_status_daily_all", "report_latency_daily", "report_latency_totals_daily",
    "report_latency_mtd",
)
# Per (dt, hour) partials the daily tables are rolled up from (migration 0009): the pipeline's.
_PARTIAL_TABLES = ("report_status_hourly", "report_latency_hourly")
_RW = ("SELECT", "INSERT", "UPDATE", "DELETE")

# Looked up by the API instead of reading api_keys: one row by key id, hashes only (migration 0008).
API_KEY_LOOKUP_FUNCTION = "api_key_lookup(text)"

ROLES: dict[str, PgRole] = {
    role.duty: role
    for role in (
        # Owns the schema (every table is its object): migrations, provisioning's grants, the
        # test suite's fixtures. Never used by a long-running service.
        PgRole("owner", "pg_user", "pg_password", "owns the serving schema; runs migrations and grants"),
        # The Dagster assets' Postgres step: verifies what the sink loaded, keeps the report
        # aggregates and the ledger, leases landing hours. Reads curated rows, never writes them.
        PgRole(
            "pipeline", "pg_pipeline_user", "pg_pipeline_password",
            "the pipeline's Postgres step: aggregates, ledger, hour leases; reads curated rows",
            tables={
                "curated_payments": ("SELECT",),
                **{t: _RW for t in (*REPORT_TABLES, *_PARTIAL_TABLES)},
                # Drains marks: SELECT ... FOR UPDATE SKIP LOCKED (which needs UPDATE), then DELETE.
                "report_aggregate_dirty_dts": ("SELECT", "UPDATE", "DELETE"),
                "pipeline_ledger": _RW,
                "pipeline_ledger_loaded_dts": _RW,
                "landing_hour_leases": _RW,
            },
        ),
        # The sink connector: upserts curated rows (ON CONFLICT DO UPDATE needs SELECT). It stages
        # each batch in a session temp table (connect/copy-sink), hence TEMPORARY. Its triggers
        # mark dirty dts as their owner (SECURITY DEFINER, migration 0008).
        PgRole(
            "sink", "pg_sink_user", "pg_sink_password", "the Kafka Connect sink: upserts curated_payments",
            tables={"curated_payments": ("SELECT", "INSERT", "UPDATE")},
            temporary=True,
        ),
        # The reports API: reads what the reports read; API keys only through the lookup function.
        PgRole(
            "api", "pg_api_user", "pg_api_password", "the reports API: reads reports, looks keys up by id",
            tables={
                "curated_payments": ("SELECT",),
                **{t: ("SELECT",) for t in REPORT_TABLES},
                "report_aggregate_dirty_dts": ("SELECT",),
                # Whether a kept answer still holds (migration 0010, api/reports/answer_cache.py).
                "report_aggregate_versions": ("SELECT",),
                "pipeline_ledger": ("SELECT",),
                "pipeline_ledger_loaded_dts": ("SELECT",),
            },
            functions=(API_KEY_LOOKUP_FUNCTION,),
        ),
        # `python -m api.keys`: creates, revokes (an UPDATE) and lists keys; deletes none.
        PgRole(
            "keys", "pg_keys_user", "pg_keys_password", "API key administration (python -m api.keys)",
            tables={"api_keys": ("SELECT", "INSERT", "UPDATE")},
        ),
        # Dagster's instance storage: owns its own database and nothing in the serving one.
        PgRole("dagster", "dagster_pg_user", "dagster_pg_password", "Dagster's instance storage", database="dagster"),
    )
}

# Every table of the serving schema a duty may be granted (the migrations' tables, yoyo's aside).
SERVING_TABLES = (
    "curated_payments", *REPORT_TABLES, *_PARTIAL_TABLES, "report_aggregate_dirty_dts", "report_aggregate_versions", "pipeline_ledger", "pipeline_ledger_loaded_dts",
    "landing_hour_leases", "api_keys",
)


def sink_grant_sql(table: str, sink_user: str) -> sql.Composed:
    """The sink's privileges on curated_payments, on another table of the same shape (a
    throwaway sink's target in tests and benchmarks)."""
    privileges = ROLES["sink"].tables["curated_payments"]
    return sql.SQL("GRANT {} ON TABLE {} TO {}").format(
        sql.SQL(", ").join(sql.SQL(p) for p in privileges), sql.Identifier(table), sql.Identifier(sink_user))


def grants_sql(names: dict[str, str]) -> list[sql.Composed]:
    """Statements that bring every non-owner role of the serving database to exactly its grants
    (revoke all, then grant), run by the owner after the migrations. `names`: duty -> role."""
    stmts: list[sql.Composed] = []
    for role in ROLES.values():
        if role.duty == "owner" or role.database != "serving":
            continue
        who = sql.Identifier(names[role.duty])
        stmts.append(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(who))
        stmts.append(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(who))
        for table, privileges in sorted(role.tables.items()):
            stmts.append(
                sql.SQL("GRANT {} ON TABLE public.{} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges), sql.Identifier(table), who
                )
            )
        for function in role.functions:
            stmts.append(sql.SQL("GRANT EXECUTE ON FUNCTION public.{} TO {}").format(sql.SQL(function), who))
    return stmts
