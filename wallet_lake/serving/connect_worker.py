"""The Kafka Connect worker's properties (connect/worker.properties rendered for this deployment),
and how the sink's database password reaches the worker: one switch, WL_CONNECT_SECRETS, renders
both the worker's config provider and the connector's reference to the secret, so they cannot
disagree.

  env             (the local stack) Kafka's EnvVarConfigProvider. The connector names
                  ${env:NAME}; the provider admits the variable NAME and no other.
  secretsmanager  (AWS) the project's SecretsManagerConfigProvider
                  (connect/secrets-manager-provider). The connector names
                  ${secretsManager:<NAME_SECRET_ID>:<NAME_SECRET_KEY, default password>}; the
                  provider admits that secret and no other, and reads it with the worker's role.

NAME is WL_CONNECT_SINK_SECRET (default WL_PG_SINK_PASSWORD): the sink's own secret, named the way
wallet_lake/security/secrets.py names every secret (NAME, NAME_SECRET_ID, NAME_SECRET_KEY).

`python -m wallet_lake.serving.connect_worker` prints the worker's properties for the environment
(stack/wallet-stack renders the worker's file with it and appends the Kafka client logins)."""

from __future__ import annotations

import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from wallet_lake.serving.connect import CONNECT_DIR
from wallet_lake.security.secrets import DEFAULT_SECRET_KEY, secret_manager_ref, secrets_manager_endpoint
from wallet_lake.settings import AwsSettings, ConnectSecretSettings, ConnectWorkerSettings, KafkaSettings, SettingsError, default, load

WORKER_TEMPLATE = "worker.properties"
MODES = ("env", "secretsmanager")
DEFAULT_MODE = default(ConnectSecretSettings, "connect_secrets")
DEFAULT_SINK_SECRET = default(ConnectSecretSettings, "connect_sink_secret")
# Provider aliases (the ${alias:...} of references) and classes.
ENV_PROVIDER = ("env", "org.apache.kafka.common.config.provider.EnvVarConfigProvider")
SECRETS_MANAGER_PROVIDER = ("secretsManager", "io.walletlake.connect.config.SecretsManagerConfigProvider")
# The template's variables; nothing else of the environment (no secret) is ever substituted.
TEMPLATE_VARIABLES = ("WL_KAFKA_BOOTSTRAP", "WL_CONNECT_LISTENER", "WL_CONNECT_ADVERTISED_HOST",
                      "WL_CONNECT_REPLICATION_FACTOR", "WL_CONNECT_PLUGIN_PATH")

_VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# Secrets Manager names (letters, digits, /_+=.@-). Not an ARN: Connect's ${provider:path:key}
# splits at the first colon after the provider, so an ARN's colons would cut its path short.
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_SECRET_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class ConnectSecretsError(ValueError):
    """The mode's settings are incomplete or malformed; names the variable to fix."""


@dataclass(frozen=True)
class SinkSecret:
    """Where the sink connector's database password comes from, in one mode."""

    mode: str
    name: str  # the secret's variable name, e.g. WL_PG_SINK_PASSWORD
    secret_id: str = ""  # secretsmanager: the secret's name in Secrets Manager
    key: str = DEFAULT_SECRET_KEY  # secretsmanager: its JSON field

    @classmethod
    def of(cls, mode: str, name: str, env: Mapping[str, str] | None = None) -> "SinkSecret":
        """The sink's secret in `mode`; secretsmanager reads NAME_SECRET_ID (and NAME_SECRET_KEY)
        from `env` (default the process environment, through security/secrets.py)."""
        if mode not in MODES:
            raise ConnectSecretsError(f"WL_CONNECT_SECRETS={mode!r}: expected one of {', '.join(MODES)}")
        if not _VARIABLE_NAME.fullmatch(name or ""):
            raise ConnectSecretsError(f"WL_CONNECT_SINK_SECRET={name!r}: expected a variable name such as {DEFAULT_SINK_SECRET}")
        if mode == "env":
            return cls(mode, name)
        secret_id, key = secret_manager_ref(name, env) or ("", DEFAULT_SECRET_KEY)
        if not _SECRET_NAME.fullmatch(secret_id):
            raise ConnectSecretsError(
                f"{name}_SECRET_ID={secret_id!r}: WL_CONNECT_SECRETS=secretsmanager needs the sink's secret name in "
                "Secrets Manager (letters, digits, /_+=.@-; a name, not an ARN)")
        if not _SECRET_KEY.fullmatch(key):
            raise ConnectSecretsError(f"{name}_SECRET_KEY={key!r}: expected a JSON field name")
        return cls(mode, name, secret_id, key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SinkSecret":
        try:
            c = load(ConnectSecretSettings, env)
        except SettingsError as exc:
            raise ConnectSecretsError(str(exc)) from None
        return cls.of(c.connect_secrets, c.connect_sink_secret, env)

    def reference(self) -> str:
        """What the connector config holds instead of the password."""
        if self.mode == "env":
            return f"${{{ENV_PROVIDER[0]}:{self.name}}}"
        return f"${{{SECRETS_MANAGER_PROVIDER[0]}:{self.secret_id}:{self.key}}}"

    def allowlist_pattern(self) -> str:
        """The provider's allowlist: this secret only. Regex metacharacters a name may hold (. +)
        go in brackets, which Java and Python read alike and a properties file leaves alone."""
        exact = self.name if self.mode == "env" else self.secret_id
        return "^" + "".join(f"[{c}]" if c in ".+" else c for c in exact) + "$"

    def provider_properties(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The worker's config.providers block. secretsmanager: region AWS_REGION, endpoint as
        security/secrets.py's (WL_SECRETS_ENDPOINT_URL, else WL_S3_ENDPOINT_URL; none on AWS)."""
        alias, cls = ENV_PROVIDER if self.mode == "env" else SECRETS_MANAGER_PROVIDER
        prefix = f"config.providers.{alias}"
        props = {"config.providers": alias, f"{prefix}.class": cls, f"{prefix}.param.allowlist.pattern": self.allowlist_pattern()}
        if self.mode == "secretsmanager":
            region = load(AwsSettings, env).aws_region
            if region:
                props[f"{prefix}.param.region"] = region
            endpoint = secrets_manager_endpoint(env)
            if endpoint:
                props[f"{prefix}.param.endpoint"] = endpoint
        return props


def render_worker_properties(env: Mapping[str, str] | None = None, template: Path | None = None) -> str:
    """connect/worker.properties with its ${WL_*} variables filled from `env` and the config
    provider block of the sink's secret (SinkSecret.from_env) in place of
    ${WL_CONNECT_CONFIG_PROVIDERS}. The Kafka client logins are not part of it (they hold the
    worker's password; stack/wallet-stack appends them to the 0600 file)."""
    text = (template or CONNECT_DIR / WORKER_TEMPLATE).read_text()
    try:
        kafka, worker = load(KafkaSettings, env), load(ConnectWorkerSettings, env)
    except SettingsError as exc:
        raise ConnectSecretsError(f"the worker's properties: {exc}") from None
    values = {"WL_KAFKA_BOOTSTRAP": kafka.kafka_bootstrap, "WL_CONNECT_LISTENER": worker.connect_listener,
              "WL_CONNECT_ADVERTISED_HOST": worker.connect_advertised_host,
              "WL_CONNECT_REPLICATION_FACTOR": str(worker.connect_replication_factor),
              "WL_CONNECT_PLUGIN_PATH": worker.connect_plugin_path}
    missing = [v for v in TEMPLATE_VARIABLES if not values[v]]
    if missing:
        raise ConnectSecretsError(f"the worker's properties need {', '.join(missing)}")
    providers = SinkSecret.from_env(env).provider_properties(env)
    values["WL_CONNECT_CONFIG_PROVIDERS"] = "\n".join(f"{k}={v}" for k, v in providers.items())
    rendered = string.Template(text).safe_substitute(values)
    settings = "\n".join(l for l in rendered.splitlines() if not l.lstrip().startswith("#"))
    unresolved = sorted(set(re.findall(r"\$\{(WL_[A-Z0-9_]+)\}", settings)))
    if unresolved:
        raise ConnectSecretsError(f"connect/{WORKER_TEMPLATE} names variables the renderer does not fill: {', '.join(unresolved)}")
    return rendered


def parse_properties(text: str) -> dict[str, str]:
    """key=value lines of a rendered worker file (later lines win, as in Java)."""
    lines = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    return dict(l.split("=", 1) for l in lines)


if __name__ == "__main__":
    try:
        sys.stdout.write(render_worker_properties())
    except ConnectSecretsError as exc:
        print(f"connect worker: {exc}", file=sys.stderr)
        sys.exit(2)
