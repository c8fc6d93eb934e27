"""Apply the Postgres migrations (versioned SQL files in serving/migrations/, applied in order
and recorded by yoyo in the database), so the schema never comes from the sink's auto-create.
They run as the schema's owner (serving/pg_roles.py), over verified TLS."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def database_url(host: str, port: int, user: str, password: str, dbname: str, tls: dict[str, str] | None = None) -> str:
    """yoyo's URL; its query parameters (sslmode, sslrootcert) reach psycopg.connect as they are."""
    query = f"?{urlencode(tls)}" if tls else ""
    return f"postgresql+psycopg://{quote(user)}:{quote(password, safe='')}@{host}:{port}/{quote(dbname)}{query}"


def migrate(host: str, port: int, user: str, password: str, dbname: str, tls: dict[str, str] | None = None) -> list[str]:
    """Apply pending migrations; returns the ids applied (empty when up to date)."""
    backend = get_backend(database_url(host, port, user, password, dbname, tls))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [m.id for m in pending]
