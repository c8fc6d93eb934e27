"""Postgres objects rendered from the contracts: the lifecycle rank function, the accepted-status
CHECK on curated_payments and the no-regression trigger function (contracts.lifecycle,
contracts.ordering).

Migrations are static files applied by yoyo, and an applied migration is history, so the
rendering is committed: a migration carries `render()`'s block verbatim, and a test fails when the
newest migration holding such a block differs from the rendering of the current contracts. After
a change to the statuses, their ranks or the latest-record order, add a migration with the next
free number and the output of

    python -m wallet_lake.serving.contract_sql

(every statement in the block replaces what an earlier block created, so it can be applied again).
Never edit an applied migration.

Why a rendered migration rather than a lookup table that provisioning fills: the function stays
IMMUTABLE and reads no table (the sink's trigger needs no extra grant), a change of ranks is
applied in the same transaction as the migration that records it (no window with an empty or
half-filled table under a live sink), and it is reviewed as what it is, a change of which stored
record wins. `deployed_differences` checks a database against the rendering; provisioning runs it
after the migrations."""

from __future__ import annotations

import re
from pathlib import Path

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, LIFECYCLE_RANK
from wallet_lake.contracts.ordering import POSTGRES_RANK_FUNCTION, postgres_first_sql

BEGIN_MARKER = "-- BEGIN rendered by `python -m wallet_lake.serving.contract_sql`: edit wallet_lake/contracts, not this block"
END_MARKER = "-- END rendered by `python -m wallet_lake.serving.contract_sql`"
STATUS_CHECK = "curated_payments_status_accepted"
KEEP_NEWEST_FUNCTION = "curated_payments_keep_newest"


def _quoted(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def rank_function_body() -> str:
    """The body (between the $$) of the lifecycle rank function."""
    rank_cases = "\n".join(f"        WHEN '{status}' THEN RETURN {rank};" for status, rank in LIFECYCLE_RANK.items())
    return f"""
BEGIN
    CASE status
{rank_cases}
        ELSE RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            MESSAGE = format('unknown payment status %L', status),
            HINT = 'accepted statuses (wallet_lake.contracts.lifecycle): {", ".join(ACCEPTED_STATUSES)}';
    END CASE;
END """


def keep_newest_body() -> str:
    """The body (between the $$) of the no-regression trigger function."""
    return f"""
BEGIN
    PERFORM {POSTGRES_RANK_FUNCTION}(NEW.status);
    -- Parenthesized: PL/pgSQL ends an IF condition at the first THEN outside parentheses.
    IF ({postgres_first_sql("NEW", "OLD", indent="    ")}) THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END """


def function_bodies() -> dict[str, str]:
    """{function name: body} of every function the block creates."""
    return {POSTGRES_RANK_FUNCTION: rank_function_body(), KEEP_NEWEST_FUNCTION: keep_newest_body()}


def render() -> str:
    """The block of SQL a migration carries, markers included."""
    return f"""{BEGIN_MARKER}

-- Lifecycle rank of a status (contracts.lifecycle.LIFECYCLE_RANK). An unknown status raises: the
-- curated contract admits only the accepted ones.
CREATE OR REPLACE FUNCTION {POSTGRES_RANK_FUNCTION}(status text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $${rank_function_body()}$$;

-- Only accepted statuses (contracts.lifecycle.ACCEPTED_STATUSES), whichever loader writes.
ALTER TABLE curated_payments DROP CONSTRAINT IF EXISTS {STATUS_CHECK};
ALTER TABLE curated_payments ADD CONSTRAINT {STATUS_CHECK} CHECK (status IN ({_quoted(ACCEPTED_STATUSES)}));

-- No regression, whichever loader writes: an update applies only when the incoming record comes
-- strictly before the stored one in the latest-record order (contracts.ordering.LATEST_FIRST,
-- the order of the Spark dedupe and of the lake's latest view). Returning NULL skips the update
-- silently: an older record, or the stored record itself (equal under the order means equal in
-- every column), leaves the row as it is. The status is checked first, so an unknown one is an
-- error even in an older record.
CREATE OR REPLACE FUNCTION {KEEP_NEWEST_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $${keep_newest_body()}$$;

{END_MARKER}
"""


def rendered_block_of(text: str) -> str | None:
    """The rendered block a migration's text carries (markers included), or None."""
    start = text.find(BEGIN_MARKER)
    if start < 0:
        return None
    end = text.find(END_MARKER, start)
    if end < 0:
        raise ValueError(f"a migration has {BEGIN_MARKER!r} without {END_MARKER!r}")
    return text[start : end + len(END_MARKER)] + "\n"


def newest_rendered_migration(migrations_dir: Path) -> tuple[Path, str] | None:
    """(path, block) of the newest migration (highest number) that carries a rendered block."""
    for path in sorted(migrations_dir.glob("*.sql"), reverse=True):
        if path.name.endswith(".rollback.sql"):
            continue
        block = rendered_block_of(path.read_text())
        if block is not None:
            return path, block
    return None


# pg_get_constraintdef prints `CHECK ((status = ANY (ARRAY['PENDING'::text, ...])))`.
_CHECK_LITERAL = re.compile(r"'((?:[^']|'')*)'::text")


def deployed_differences(conn, schema: str = "public") -> list[str]:
    """What the database (a psycopg connection; any role that can read the catalogs) holds
    otherwise than the rendering of the current contracts; empty when they agree."""
    problems = []
    for name, body in function_bodies().items():
        rows = conn.execute(
            "SELECT p.prosrc FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = %s",
            [schema, name],
        ).fetchall()
        if len(rows) != 1:
            problems.append(f"function {schema}.{name}: {len(rows)} found, want exactly 1")
        elif rows[0][0] != body:
            problems.append(f"function {schema}.{name}: its body is not the rendering of wallet_lake/contracts")
    row = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint AS c "
        "WHERE c.conname = %s AND c.conrelid = to_regclass(%s)",
        [STATUS_CHECK, f"{schema}.curated_payments"],
    ).fetchone()
    if row is None:
        problems.append(f"constraint {STATUS_CHECK} on {schema}.curated_payments is missing")
    else:
        statuses = tuple(s.replace("''", "'") for s in _CHECK_LITERAL.findall(row[0]))
        if statuses != ACCEPTED_STATUSES:
            problems.append(f"constraint {STATUS_CHECK} accepts {statuses}, the contract {ACCEPTED_STATUSES}")
    return problems


def verify_deployed(conn, schema: str = "public") -> None:
    """Raise when the database differs from the rendering of the current contracts."""
    problems = deployed_differences(conn, schema)
    if problems:
        raise RuntimeError(
            "Postgres does not run the rendering of wallet_lake/contracts: " + "; ".join(problems)
            + ". Add a migration holding the output of `python -m wallet_lake.serving.contract_sql` "
            "(never edit an applied one), then provision again."
        )


if __name__ == "__main__":
    print(render(), end="")
