"""Apply the Postgres migrations (versioned SQL files in serving/migrations/, applied in order
and recorded by yoyo in the database), so the schema never comes from the sink's auto-create."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def database_url(host: str, port: int, user: str, password: str, dbname: str) -> str:
    return f"postgresql+psycopg://{quote(user)}:{quote(password, safe='')}@{host}:{port}/{quote(dbname)}"


def migrate(host: str, port: int, user: str, password: str, dbname: str) -> list[str]:
    """Apply pending migrations; returns the ids applied (empty when up to date)."""
    backend = get_backend(database_url(host, port, user, password, dbname))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [m.id for m in pending]
