"""Postgres least privilege and TLS on the live stack (serving/pg_roles.py, serving/pg_provision.py,
stack/wallet-stack's pg_hba.conf): each role can do its job and is refused outside its grants, and
no connection without verified TLS gets in."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from wallet_lake.serving import pg_connect
from wallet_lake.serving.pg_provision import admin_connect_kwargs
from wallet_lake.serving.pg_roles import API_KEY_LOOKUP_FUNCTION, ROLES, SERVING_TABLES

pytestmark = pytest.mark.integration

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SERVING_DUTIES = [d for d, r in ROLES.items() if r.database == "serving" and d != "owner"]


@pytest.fixture(scope="module")
def owner():
    with pg_connect.connect("owner", autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("duty", SERVING_DUTIES)
def test_each_role_holds_exactly_its_table_grants(owner, duty):
    """Both ways, from the catalog: every privilege listed is held, and none other on any table."""
    role = os.environ[ROLES[duty].user_env]
    held = {
        (t, p)
        for t in SERVING_TABLES
        for p in PRIVILEGES
        if owner.execute("SELECT has_table_privilege(%s, %s, %s)", (role, f"public.{t}", p)).fetchone()[0]
    }
    assert held == {(t, p) for t, ps in ROLES[duty].tables.items() for p in ps}
    lookup = owner.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, f"public.{API_KEY_LOOKUP_FUNCTION}")).fetchone()[0]
    assert lookup == (API_KEY_LOOKUP_FUNCTION in ROLES[duty].functions)
    assert not owner.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)).fetchone()[0]
    temporary = owner.execute("SELECT has_database_privilege(%s, current_database(), 'TEMPORARY')", (role,)).fetchone()[0]
    assert temporary == ROLES[duty].temporary


def _refused(duty: str, statement: str, params=None) -> None:
    with pg_connect.connect(duty, autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement, params)


def test_the_sink_upserts_curated_rows_and_its_triggers_mark_dts_but_it_reads_nothing_else():
    pid = f"t-roles-{uuid.uuid4().hex}"
    day = dt.date(2031, 5, 17)
    with pg_connect.connect("sink") as conn:  # one transaction, rolled back: nothing stays
        at = dt.datetime(2031, 5, 17, 1, tzinfo=dt.timezone.utc)
        for amount in (100, 150):  # an insert, then the upsert's update of the same payment
            conn.execute(
                "INSERT INTO public.curated_payments (payment_id, merchant_id, amount_cents, currency, status, created_at,"
                " dt, hour, is_approved, is_refunded, processed_at, curated_version)"
                " VALUES (%s, 'm_roles', %s, 'EUR', 'APPROVED', %s, %s, 1, true, false, %s, 1)"
                " ON CONFLICT (payment_id) DO UPDATE SET amount_cents = EXCLUDED.amount_cents, processed_at = EXCLUDED.processed_at",
                (pid, amount, at, day, at + dt.timedelta(minutes=amount)),
            )
        assert conn.execute("SELECT amount_cents FROM public.curated_payments WHERE payment_id = %s", (pid,)).fetchone() == (150,)
        # The statement trigger marked the dt as its owner (SECURITY DEFINER, migration 0008),
        # in a table the sink itself may not read.
        with pytest.raises(errors.InsufficientPrivilege):
            with conn.transaction():
                conn.execute("SELECT count(*) FROM public.report_aggregate_dirty_dts")
        conn.rollback()
    _refused("sink", "DELETE FROM public.curated_payments WHERE payment_id = 'none'")
    _refused("sink", "SELECT key_sha256 FROM public.api_keys")
    _refused("sink", "SELECT count(*) FROM public.report_status_daily")
    _refused("sink", "SELECT * FROM public.api_key_lookup('0123456789abcdef')")
    _refused("sink", "CREATE TABLE public.t_roles_sink (a int)")


def test_only_the_sink_may_create_temp_tables_its_staging_table_among_them():
    """The COPY sink stages each batch in a session temp table (connect/copy-sink); TEMPORARY is
    revoked from PUBLIC, and no other service role holds it."""
    with pg_connect.connect("sink") as conn:  # rolled back: the table goes with the session anyway
        conn.execute("CREATE TEMP TABLE t_roles_staging (LIKE public.curated_payments) ON COMMIT DELETE ROWS")
        conn.rollback()
    for duty in SERVING_DUTIES:
        if not ROLES[duty].temporary:
            _refused(duty, "CREATE TEMP TABLE t_roles_temp (a int)")


def test_the_api_reads_reports_and_looks_keys_up_only_through_the_function(owner):
    with pg_connect.connect("api", autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM public.report_status_daily").fetchone()
        assert conn.execute("SELECT * FROM public.api_key_lookup('0123456789abcdef')").fetchall() == []
    _refused("api", "SELECT key_id FROM public.api_keys")
    _refused("api", "INSERT INTO public.report_aggregate_dirty_dts (dt) VALUES ('2031-01-01')")
    _refused("api", "UPDATE public.curated_payments SET amount_cents = 0 WHERE payment_id = 'none'")
    _refused("api", "SELECT count(*) FROM public.landing_hour_leases")


def test_the_key_administrator_manages_keys_and_reads_no_payments():
    from api.keys import create_key, list_keys

    with pg_connect.connect("keys", autocommit=True) as conn:
        key_id, _ = create_key(conn, merchant_ids=["m_roles"], label="t-roles")
        try:
            assert key_id in {k["key_id"] for k in list_keys(conn)}
        finally:
            with pg_connect.connect("owner", autocommit=True) as owner_conn:
                owner_conn.execute("DELETE FROM public.api_keys WHERE key_id = %s", (key_id,))
    _refused("keys", "SELECT count(*) FROM public.curated_payments")
    _refused("keys", "DELETE FROM public.api_keys WHERE key_id = 'none'")


def test_the_pipeline_keeps_aggregates_and_ledger_but_never_writes_curated_rows():
    with pg_connect.connect("pipeline", autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM public.curated_payments").fetchone()
        conn.execute("DELETE FROM public.report_status_daily WHERE dt = '1900-01-01'")
    _refused("pipeline", "DELETE FROM public.curated_payments WHERE payment_id = 'none'")
    _refused("pipeline", "SELECT key_id FROM public.api_keys")
    _refused("pipeline", "TRUNCATE public.pipeline_ledger")


def test_databases_admit_only_their_roles():
    env = dict(os.environ)
    for duty in SERVING_DUTIES:  # the serving roles cannot enter Dagster's database...
        kwargs = pg_connect.connect_kwargs(duty) | {"dbname": env["WL_DAGSTER_PG_DB"]}
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(**kwargs).close()
    # ...and Dagster's role cannot enter the serving database.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(**(pg_connect.connect_kwargs("dagster") | {"dbname": env["WL_PG_DB"]})).close()
    with pg_connect.connect("dagster") as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == env["WL_DAGSTER_PG_DB"]


def test_no_role_has_power_beyond_its_grants_and_passwords_are_stored_as_scram_verifiers():
    names = [os.environ[r.user_env] for r in ROLES.values()]
    with psycopg.connect(**admin_connect_kwargs(os.environ)) as admin:
        rows = admin.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolpassword"
            " FROM pg_authid WHERE rolname = ANY(%s)", (names,)
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(names)
    for name, *powers, password in rows:
        assert not any(powers), name
        assert password.startswith("SCRAM-SHA-256$"), name


def test_a_connection_without_tls_is_refused():
    kwargs = pg_connect.connect_kwargs("owner") | {"sslmode": "disable"}
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(**kwargs).close()


def test_a_server_not_signed_by_the_trusted_ca_is_refused(tmp_path: Path):
    """The client side of verify-full: against a CA that did not sign the server's certificate,
    the client refuses before sending a password."""
    from stack import tls

    other = tmp_path / "other-ca"
    tls.ensure(other)
    kwargs = pg_connect.connect_kwargs("owner") | {"sslrootcert": str(other / "ca.pem")}
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**kwargs).close()
    # The right CA, but a name the certificate does not carry: verify-full refuses it too.
    with pytest.raises(psycopg.OperationalError, match="does not match host name|server certificate for"):
        psycopg.connect(**(pg_connect.connect_kwargs("owner") | {"host": "wallet-lake.invalid", "hostaddr": "127.0.0.1"})).close()


def test_the_cluster_administrator_cannot_log_in_over_tcp():
    kwargs = pg_connect.connect_kwargs("owner") | {"user": "postgres", "password": "anything"}
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects"):
        psycopg.connect(**kwargs).close()


def test_every_client_connection_of_the_stack_is_encrypted(owner):
    """Whoever is connected now (the sink's tasks, the API, Dagster, this test) came over TLS."""
    with psycopg.connect(**admin_connect_kwargs(os.environ)) as admin:
        rows = admin.execute(
            "SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
            " WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL"
        ).fetchall()
    assert rows and all(ssl for _, ssl in rows), rows
    assert os.environ["WL_PG_USER"] in {u for u, _ in rows}
