"""API configuration: the reports API's settings, derived from the declarations in
wallet_lake/settings.py (Postgres endpoint, API, operations groups; no Dagster import), plus the
Postgres login of the API's own role.

Connection fields have no defaults: a missing host must fail at startup, not silently point
the API at some other database."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator

from wallet_lake.settings import ApiSettings, OpsSettings, PostgresEndpoint, SettingsError, load

__all__ = ["APPLICATION_NAME", "KeyAdminSettings", "Settings", "SettingsError", "load_settings"]

APPLICATION_NAME = "wallet-lake-api"


class Settings(PostgresEndpoint, ApiSettings, OpsSettings):
    # The Postgres role of this program (wallet_lake/serving/pg_roles.py): the API reads as its
    # own read-only role; KeyAdminSettings below logs in as the key administrator instead.
    PG_DUTY: ClassVar[str] = "api"

    pg_user: Annotated[str, Field(min_length=1, validation_alias=AliasChoices("WL_PG_API_USER"),
                                  description="Postgres role of the API (WL_PG_API_USER).")]
    pg_password: Annotated[SecretStr, Field(validation_alias=AliasChoices("WL_PG_API_PASSWORD"),
                                            description="Its password (WL_PG_API_PASSWORD, or WL_PG_API_PASSWORD_SECRET_ID).")]

    @model_validator(mode="after")
    def _pool_bounds(self) -> "Settings":
        if self.pg_pool_min_size > self.pg_pool_max_size:
            raise ValueError("pg_pool_min_size must not exceed pg_pool_max_size")
        return self

    def session_settings(self, *, read_only: bool = True, application_name: str = APPLICATION_NAME) -> dict[str, str]:
        """The server settings every connection of this program starts its session with.

        They travel in the startup packet, so they are the session defaults of every pooled
        connection before its first query, and survive RESET. Only the key administration CLI
        connects with read_only=False."""
        # random_page_cost 1.1: the serving tables are small and cached; with the default 4 the
        # planner scans the month-to-date latency table whole rather than look up three days.
        settings = {
            "application_name": application_name,
            "statement_timeout": str(self.pg_statement_timeout_ms),
            "search_path": "public",
            "random_page_cost": "1.1",
        }
        if read_only:
            settings["default_transaction_read_only"] = "on"
        return settings

    def conninfo(self, *, read_only: bool = True, application_name: str = APPLICATION_NAME) -> str:
        """libpq connection string without the password (kept out of any string that might be
        logged), with the session settings as startup options."""
        from psycopg.conninfo import make_conninfo

        session = self.session_settings(read_only=read_only, application_name=application_name)
        name = session.pop("application_name")
        tls = {"sslmode": self.pg_sslmode} | ({"sslrootcert": self.pg_sslrootcert} if self.pg_sslrootcert else {})
        return make_conninfo(
            "",
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            dbname=self.pg_db,
            connect_timeout=self.pg_connect_timeout_s,
            application_name=name,
            options=" ".join(f"-c {k}={v}" for k, v in session.items()),
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
    from wallet_lake.security.secrets import SecretNotFound, resolve_secret, secret_manager_ref

    if not secret_manager_ref(name):
        return {}

    try:
        return {"pg_password": resolve_secret(name)}
    except SecretNotFound as exc:  # its message names the secret, never a value
        raise SettingsError(f"invalid configuration: {name}_SECRET_ID: {exc}") from None


def load_settings(cls: type[Settings] = Settings) -> Settings:
    """Settings from the environment (the password possibly from Secrets Manager), with an error
    that names variables and cannot leak the password (wallet_lake.settings.load)."""
    return load(cls, **_secret_overrides(cls))  # type: ignore[return-value]
