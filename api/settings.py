"""API configuration, read from WL_* environment variables (see stack/local.env).

Connection fields have no defaults: a missing host must fail at startup, not silently point
the API at some other database."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APPLICATION_NAME = "wallet-lake-api"


class SettingsError(RuntimeError):
    """Configuration is missing or invalid; the message names fields, never their values."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WL_", extra="ignore", frozen=True)

    pg_host: Annotated[str, Field(min_length=1, description="Postgres host (WL_PG_HOST).")]
    pg_port: Annotated[int, Field(ge=1, le=65535, description="Postgres port (WL_PG_PORT).")] = 5432
    pg_user: Annotated[str, Field(min_length=1, description="Postgres role (WL_PG_USER).")]
    pg_password: Annotated[SecretStr, Field(description="Postgres password (WL_PG_PASSWORD).")]
    pg_db: Annotated[str, Field(min_length=1, description="Postgres database (WL_PG_DB).")]

    pg_pool_min_size: Annotated[int, Field(ge=0)] = 1
    pg_pool_max_size: Annotated[int, Field(ge=1)] = 10
    # How long a request waits for a free pooled connection before answering 503.
    pg_pool_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    # Server-side cap on every statement the API runs (session default of each connection).
    pg_statement_timeout_ms: Annotated[int, Field(gt=0)] = 5000
    # libpq connect_timeout, whole seconds (libpq treats values below 2 as 2).
    pg_connect_timeout_s: Annotated[int, Field(ge=1)] = 5
    # /readyz waits at most this long for a connection: probes have short deadlines of their own.
    api_readyz_timeout_s: Annotated[float, Field(gt=0)] = 2.0
    # How long a verified API key (or an unknown key id) is remembered per process: a revocation
    # takes effect within this time. 0 checks Postgres on every request.
    api_key_cache_ttl_s: Annotated[float, Field(ge=0)] = 5.0

    @model_validator(mode="after")
    def _pool_bounds(self) -> "Settings":
        if self.pg_pool_min_size > self.pg_pool_max_size:
            raise ValueError("pg_pool_min_size must not exceed pg_pool_max_size")
        return self

    def conninfo(self, *, read_only: bool = True, application_name: str = APPLICATION_NAME) -> str:
        """libpq connection string without the password (kept out of any string that might be logged).

        The statement timeout, search_path and read-only mode travel in the startup packet, so
        they are the session defaults of every pooled connection before its first query, and
        survive RESET. Only the key administration CLI connects with read_only=False."""
        from psycopg.conninfo import make_conninfo

        # random_page_cost 1.1: the serving tables are small and cached; with the default 4 the
        # planner scans the month-to-date latency table whole rather than look up three days.
        options = (
            f"-c statement_timeout={self.pg_statement_timeout_ms} -c search_path=public -c random_page_cost=1.1"
        )
        if read_only:
            options += " -c default_transaction_read_only=on"
        return make_conninfo(
            "",
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            dbname=self.pg_db,
            connect_timeout=self.pg_connect_timeout_s,
            application_name=application_name,
            options=options,
        )


def _secret_overrides() -> dict[str, str]:
    """The database password from AWS Secrets Manager when WL_PG_PASSWORD_SECRET_ID names a
    secret (wallet_lake.security.secrets: JSON field WL_PG_PASSWORD_SECRET_KEY, default
    "password"); otherwise WL_PG_PASSWORD from the environment, read by pydantic."""
    if not os.environ.get("WL_PG_PASSWORD_SECRET_ID"):
        return {}
    from wallet_lake.security.secrets import SecretNotFound, resolve_secret

    try:
        return {"pg_password": resolve_secret("WL_PG_PASSWORD")}
    except SecretNotFound as exc:  # its message names the secret, never a value
        raise SettingsError(f"invalid API configuration: WL_PG_PASSWORD_SECRET_ID: {exc}") from None


def load_settings() -> Settings:
    """Settings from the environment (the password possibly from Secrets Manager), with an error
    that cannot leak the password.

    pydantic's own message for a missing field echoes every input value, password included."""
    overrides = _secret_overrides()
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # the other fields come from the environment
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(f"invalid API configuration: {problems}") from None


def _env_name(loc: tuple) -> str:
    return "WL_" + "_".join(str(p) for p in loc).upper() if loc else "settings"
