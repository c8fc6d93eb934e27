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
Never edit an applied migration."""

from __future__ import annotations

from pathlib import Path

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, LIFECYCLE_RANK
from wallet_lake.contracts.ordering import POSTGRES_RANK_FUNCTION, postgres_first_sql

BEGIN_MARKER = "-- BEGIN rendered by `python -m wallet_lake.serving.contract_sql`: edit wallet_lake/contracts, not this block"
END_MARKER = "-- END rendered by `python -m wallet_lake.serving.contract_sql`"
STATUS_CHECK = "curated_payments_status_accepted"


def _quoted(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def render() -> str:
    """The block of SQL a migration carries, markers included."""
    rank_cases = "\n".join(f"        WHEN '{status}' THEN RETURN {rank};" for status, rank in LIFECYCLE_RANK.items())
    accepted = _quoted(ACCEPTED_STATUSES)
    return f"""{BEGIN_MARKER}

-- Lifecycle rank of a status (contracts.lifecycle.LIFECYCLE_RANK). An unknown status raises: the
-- curated contract admits only the accepted ones.
CREATE OR REPLACE FUNCTION {POSTGRES_RANK_FUNCTION}(status text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    CASE status
{rank_cases}
        ELSE RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            MESSAGE = format('unknown payment status %L', status),
            HINT = 'accepted statuses (wallet_lake.contracts.lifecycle): {", ".join(ACCEPTED_STATUSES)}';
    END CASE;
END $$;

-- Only accepted statuses (contracts.lifecycle.ACCEPTED_STATUSES), whichever loader writes.
ALTER TABLE curated_payments DROP CONSTRAINT IF EXISTS {STATUS_CHECK};
ALTER TABLE curated_payments ADD CONSTRAINT {STATUS_CHECK} CHECK (status IN ({accepted}));

-- No regression, whichever loader writes: an update applies only when the incoming record comes
-- strictly before the stored one in the latest-record order (contracts.ordering.LATEST_FIRST,
-- the order of the Spark dedupe and of the lake's latest view). Returning NULL skips the update
-- silently: an older record, or the stored record itself (equal under the order means equal in
-- every column), leaves the row as it is. The status is checked first, so an unknown one is an
-- error even in an older record.
CREATE OR REPLACE FUNCTION curated_payments_keep_newest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM {POSTGRES_RANK_FUNCTION}(NEW.status);
    -- Parenthesized: PL/pgSQL ends an IF condition at the first THEN outside parentheses.
    IF ({postgres_first_sql("NEW", "OLD", indent="    ")}) THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END $$;

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


if __name__ == "__main__":
    print(render(), end="")
