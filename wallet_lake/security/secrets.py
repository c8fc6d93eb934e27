"""Secrets of wallet-lake, resolved from AWS Secrets Manager or the environment, and kept out of
text that leaves the process (logs, alerts, error messages).

Resolution of a secret NAME (e.g. WL_PG_PASSWORD), first match wins:
  1. NAME_SECRET_ID is set: the secret with that id/ARN in AWS Secrets Manager (the local AWS API
     in tests: WL_SECRETS_ENDPOINT_URL, else WL_S3_ENDPOINT_URL, else AWS's own endpoint). A
     SecretString that is a JSON object is read at key NAME_SECRET_KEY (default "password");
     otherwise the whole SecretString is the value.
  2. NAME is set in the environment: its value.
  3. Otherwise SecretNotFound, naming the variables to set (never a value).

Resolved values are remembered (per process) so that `redact()` can mask them in any text, and
so one run asks Secrets Manager once per secret; `forget()` clears that after a rotation."""

from __future__ import annotations

import json
import os
import threading
from typing import Iterable, Mapping

from wallet_lake.settings import SECRET_NAMES, AwsSettings, load

# Secrets the project knows by name (declared once, wallet_lake/settings.py SecretSettings):
# redact() masks their values even when only the environment holds them (the stack script
# exports the generated passwords before any code runs).
KNOWN_SECRETS = SECRET_NAMES
MASK = "***"
# The JSON field of a Secrets Manager secret read when NAME_SECRET_KEY is unset.
DEFAULT_SECRET_KEY = "password"
# Values shorter than this are not masked: masking "1" or "" would garble every message.
_MIN_REDACT_LEN = 6

_lock = threading.Lock()
_resolved: dict[str, str] = {}


class SecretNotFound(RuntimeError):
    """No source holds the secret; the message names the variables, never a value."""


def secrets_manager_endpoint(env: Mapping[str, str]) -> str | None:
    """The Secrets Manager endpoint override (the local AWS API), or None for AWS's own; the Connect
    worker's Secrets Manager provider is pointed at the same one (serving/connect_worker.py)."""
    return load(AwsSettings, env).secrets_endpoint()


def _secrets_manager(env: Mapping[str, str]):
    import boto3

    return boto3.client("secretsmanager", endpoint_url=secrets_manager_endpoint(env), region_name=load(AwsSettings, env).aws_region)


def secret_manager_ref(name: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(secret id, JSON key) when NAME_SECRET_ID names a Secrets Manager secret, else None."""
    env = os.environ if env is None else env
    secret_id = env.get(f"{name}_SECRET_ID") or ""
    if not secret_id.strip():
        return None
    return secret_id, env.get(f"{name}_SECRET_KEY") or DEFAULT_SECRET_KEY


def secret_configured(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether some source holds secret `name` (without reading Secrets Manager)."""
    env = os.environ if env is None else env
    return secret_manager_ref(name, env) is not None or bool((env.get(name) or "").strip())


def read_secret_value(secret_id: str, key: str | None = None, *, client=None, env: Mapping[str, str] | None = None) -> str:
    """The current value of a Secrets Manager secret (a JSON field of it when `key` is given and
    the SecretString is a JSON object)."""
    env = os.environ if env is None else env
    client = client or _secrets_manager(env)
    try:
        text = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except client.exceptions.ResourceNotFoundException:
        raise SecretNotFound(f"secret {secret_id!r} does not exist in Secrets Manager") from None
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict):
        field = key or DEFAULT_SECRET_KEY
        if field not in doc:
            raise SecretNotFound(f"secret {secret_id!r} is a JSON object without the key {field!r}")
        return str(doc[field])
    return text


def resolve_secret(name: str, *, env: Mapping[str, str] | None = None, client=None, refresh: bool = False) -> str:
    """The value of secret `name` (see the module docstring for the order of sources)."""
    env = os.environ if env is None else env
    if not refresh:
        with _lock:
            if name in _resolved:
                return _resolved[name]
    ref = secret_manager_ref(name, env)
    if ref:
        value = read_secret_value(*ref, client=client, env=env)
    elif env.get(name):
        value = env[name]
    else:
        raise SecretNotFound(f"secret {name} is not configured: set {name}_SECRET_ID (a Secrets Manager secret id) or {name}")
    remember(name, value)
    return value


def remember(name: str, value: str) -> None:
    with _lock:
        _resolved[name] = value


def forget(name: str | None = None) -> None:
    """Drop remembered values (all, or one) so the next resolve_secret reads the source again."""
    with _lock:
        if name is None:
            _resolved.clear()
        else:
            _resolved.pop(name, None)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value this process knows: resolved ones and the known names' env values."""
    env = os.environ if env is None else env
    with _lock:
        values = set(_resolved.values())
    values.update(env[n] for n in KNOWN_SECRETS if env.get(n))
    # Longest first, so a secret that contains another is masked whole.
    return sorted((v for v in values if len(v) >= _MIN_REDACT_LEN), key=len, reverse=True)


def redact(text: str, values: Iterable[str] | None = None) -> str:
    """`text` with every known secret value replaced by ***."""
    if not text:
        return text
    for v in secret_values() if values is None else values:
        if v and v in text:
            text = text.replace(v, MASK)
    return text


def resolve_into_environ(names: Iterable[str] = KNOWN_SECRETS, environ=None) -> list[str]:
    """Put every secret that has a NAME_SECRET_ID into environ[NAME]; returns the names set.

    For processes that only read variables: Dagster's instance (dagster.yaml reads
    WL_PG_PASSWORD), the Dagster resources (dg.EnvVar) and the Connect worker's env provider."""
    environ = os.environ if environ is None else environ
    done = []
    for name in names:
        if environ.get(f"{name}_SECRET_ID"):
            environ[name] = resolve_secret(name, env=environ, refresh=True)
            done.append(name)
    return done


def main(argv: list[str] | None = None) -> int:
    """python -m wallet_lake.security.secrets exec -- COMMAND [ARGS...]

    Resolves the project's secrets that have a *_SECRET_ID (Secrets Manager) into the
    environment and replaces this process with COMMAND: values never pass through a shell,
    a file or stdout. E.g. `... exec -- dagster-daemon run -w workspace.yaml`."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[0] != "exec" or args[1] != "--":
        print(main.__doc__, file=sys.stderr)
        return 2
    names = resolve_into_environ()
    print(f"[secrets] resolved from Secrets Manager: {', '.join(names) or 'none'}", file=sys.stderr, flush=True)
    os.execvp(args[2], args[2:])
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
