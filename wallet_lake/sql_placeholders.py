"""The project's one way of binding values into SQL text: `%(name)s` placeholders (psycopg's and
pyathena's style), never values formatted into the text. Each engine that wants another style
gets its text rendered from the same statement here: DuckDB's `$name`, asyncpg's `$1..$n`.

A literal percent sign is written `%%`, as psycopg reads it. Pure."""

from __future__ import annotations

import functools
import re

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# A placeholder, an escaped percent sign, or any other percent sign (an error).
_TOKEN = re.compile(r"%\((\w+)\)s|%%|%")


def names(sql: str) -> frozenset[str]:
    """Names of the placeholders `sql` binds."""
    return frozenset(PLACEHOLDER.findall(sql))


def to_duckdb(sql: str) -> str:
    """%(name)s -> $name (DuckDB binds by name)."""
    return PLACEHOLDER.sub(lambda m: f"${m.group(1)}", sql)


@functools.cache
def to_positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """(the text with $1..$n, the name each number binds): asyncpg binds by position. A name used
    twice keeps its number; `%%` becomes `%`; a lone `%` is refused, as psycopg refuses it."""
    order: dict[str, int] = {}

    def token(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return f"${order.setdefault(m.group(1), len(order) + 1)}"
        if m.group(0) == "%%":
            return "%"
        raise ValueError(f"a lone '%' at offset {m.start()}: write '%%' for a literal percent sign, %(name)s for a value")

    return _TOKEN.sub(token, sql), tuple(order)
