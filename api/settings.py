"""API configuration, read from WL_* environment variables (see stack/local.env).

Connection fields have no defaults: a missing host must fail at startup, not silently point
the API at some other database."""

from __future__ import annotations

import os
from typing import Annotated, ClassVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APPLICATION_NAME = "wallet-lake-api"


class SettingsError(RuntimeError):
    """Configuration is missing or invalid; the message names fields, never their values."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WL_", extra="ignore", frozen=True)
    # The Postgres role of this program (wallet_lake/serving/pg_roles.py): the API reads as its
    # own read-only role; KeyAdminSettings below logs in as the key administrator instead.
    PG_DUTY: ClassVar[str] = "api"

    pg_host: Annotated[str, Field(min_length=1, description="Postgres host (WL_PG_HOST).")]
    pg_port: Annotated[int, Field(ge=1, le=65535, description="Postgres port (WL_PG_PORT).")] = 5432
    pg_user: Annotated[str, Field(min_length=1, validation_alias=AliasChoices("WL_PG_API_USER"),
                                  description="Postgres role of the API (WL_PG_API_USER).")]
    pg_password: Annotated[SecretStr, Field(validation_alias=AliasChoices("WL_PG_API_PASSWORD"),
                                            description="Its password (WL_PG_API_PASSWORD, or WL_PG_API_PASSWORD_SECRET_ID).")]
    pg_db: Annotated[str, Field(min_length=1, description="Postgres database (WL_PG_DB).")]
    # TLS: libpq sslmode (WL_PG_SSLMODE; verify-full checks the server's certificate and name)
    # and the CA it is checked against (WL_PG_SSLROOTCERT; empty: libpq's default location).
    pg_sslmode: Annotated[str, Field(pattern=r"^(disable|allow|prefer|require|verify-ca|verify-full)$")] = "verify-full"
    pg_sslrootcert: str = ""

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
    # How long a verified API key is remembered per process (WL_API_KEY_CACHE_TTL_S): a
    # revocation takes effect within this time. 0 checks Postgres on every request.
    api_key_cache_ttl_s: Annotated[float, Field(ge=0)] = 5.0
    # Known keys remembered at most (WL_API_KEY_CACHE_MAX_ENTRIES); past it the oldest is dropped.
    api_key_cache_max_entries: Annotated[int, Field(ge=1)] = 10_000
    # How long a well-formed but unknown key id is remembered as unknown per process
    # (WL_API_KEY_NEGATIVE_CACHE_TTL_S), so a repeated bogus key costs no pooled connection.
    # A key created with that id is accepted once the entry expires (ids are random 64-bit, so
    # only a guess made before the key existed is ever cached). 0 disables the negative cache.
    api_key_negative_cache_ttl_s: Annotated[float, Field(ge=0)] = 60.0
    # Unknown key ids remembered at most (WL_API_KEY_NEGATIVE_CACHE_MAX_ENTRIES), oldest dropped
    # first; kept apart from the known keys, which a flood of bogus ids never evicts.
    api_key_negative_cache_max_entries: Annotated[int, Field(ge=1)] = 100_000

    # Token-bucket rate limits per process (api/ratelimit.py), answered with 429 and Retry-After.
    # Per client address (WL_API_RATE_LIMIT_CLIENT_PER_S / _BURST), checked before the key is
    # looked up, so it also bounds the database lookups of unknown keys; the address is the TCP
    # peer (behind a proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips).
    # 0 per second disables a limit.
    api_rate_limit_client_per_s: Annotated[float, Field(ge=0)] = 100.0
    api_rate_limit_client_burst: Annotated[int, Field(ge=1)] = 200
    # Per valid API key (WL_API_RATE_LIMIT_KEY_PER_S / _BURST), counted only once the key is
    # verified: a request naming someone else's (public) key id cannot spend that key's tokens.
    api_rate_limit_key_per_s: Annotated[float, Field(ge=0)] = 50.0
    api_rate_limit_key_burst: Annotated[int, Field(ge=1)] = 100

    # source=lake bounds (DuckDB runs inside the API process). Longest from..to range a lake
    # report may ask for (WL_API_LAKE_MAX_RANGE_DAYS); longer ones are a 422.
    api_lake_max_range_days: Annotated[int, Field(ge=1, le=366)] = 31
    # Most Parquet bytes one lake query may scan (WL_API_LAKE_MAX_SCAN_BYTES), counted when the
    # partitions from the report's first day on are listed; more is a 422 (scan too large).
    api_lake_max_scan_bytes: Annotated[int, Field(ge=1)] = 2 * 1024**3
    # DuckDB memory_limit of each lake query (WL_API_LAKE_MEMORY_LIMIT, DuckDB's own form such
    # as 512MB or 2GiB; its default would be 80% of RAM); at most two lake queries run at once.
    api_lake_memory_limit: Annotated[str, Field(pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")] = "1GB"
    # DuckDB threads of each lake query (WL_API_LAKE_THREADS); its default is one per core.
    api_lake_threads: Annotated[int, Field(ge=1)] = 1

    # The reports pages (/ui, api/ui): the API key entered in their login form is kept in an
    # HttpOnly, SameSite=Strict cookie. Secure (WL_API_UI_COOKIE_SECURE) keeps the browser from
    # ever sending it over plain HTTP: set it wherever the pages are served over HTTPS; off for
    # the local stack, which serves http://127.0.0.1.
    api_ui_cookie_secure: bool = False
    # Base URL of the Dagster UI (WL_DAGSTER_UI_URL): the pipeline ledger page links each landing
    # hour to its run there (<url>/runs/<run id>).
    dagster_ui_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = "http://127.0.0.1:3000"

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
        tls = {"sslmode": self.pg_sslmode} | ({"sslrootcert": self.pg_sslrootcert} if self.pg_sslrootcert else {})
        return make_conninfo(
            "",
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            dbname=self.pg_db,
            connect_timeout=self.pg_connect_timeout_s,
            application_name=application_name,
            options=options,
            **tls,
        )


class KeyAdminSettings(Settings):
    """`python -m api.keys`: the same settings, logged in as the key administrator."""

    PG_DUTY: ClassVar[str] = "keys"

    pg_user: Annotated[str, Field(min_length=1, validation_alias=AliasChoices("WL_PG_KEYS_USER"),
                                  description="Postgres role of the key administrator (WL_PG_KEYS_USER).")]
    pg_password: Annotated[SecretStr, Field(validation_alias=AliasChoices("WL_PG_KEYS_PASSWORD"),
                                            description="Its password (WL_PG_KEYS_PASSWORD, or WL_PG_KEYS_PASSWORD_SECRET_ID).")]


def _secret_overrides(cls: type[Settings]) -> dict[str, str]:
    """The database password from AWS Secrets Manager when <NAME>_SECRET_ID names a secret
    (wallet_lake.security.secrets: JSON field <NAME>_SECRET_KEY, default "password"); otherwise
    <NAME> from the environment, read by pydantic. NAME is the duty's password variable
    (WL_PG_API_PASSWORD, WL_PG_KEYS_PASSWORD)."""
    from wallet_lake.serving.pg_roles import ROLES

    name = ROLES[cls.PG_DUTY].password_env
    if not os.environ.get(f"{name}_SECRET_ID"):
        return {}
    from wallet_lake.security.secrets import SecretNotFound, resolve_secret

    try:
        return {name: resolve_secret(name)}  # by its alias: the field reads no other variable
    except SecretNotFound as exc:  # its message names the secret, never a value
        raise SettingsError(f"invalid API configuration: {name}_SECRET_ID: {exc}") from None


def load_settings(cls: type[Settings] = Settings) -> Settings:
    """Settings from the environment (the password possibly from Secrets Manager), with an error
    that cannot leak the password.

    pydantic's own message for a missing field echoes every input value, password included."""
    overrides = _secret_overrides(cls)
    try:
        return cls(**overrides)  # type: ignore[arg-type]  # the other fields come from the environment
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(f"invalid API configuration: {problems}") from None


def _env_name(loc: tuple) -> str:
    if loc and str(loc[0]).startswith("WL_"):  # a field read through its alias
        return str(loc[0])
    return "WL_" + "_".join(str(p) for p in loc).upper() if loc else "settings"
