"""wallet_lake/settings.py is the one declaration of every setting: the README's table is its
rendering, every variable of the local stack is declared, no module reads a WL_ variable behind
its back, and the facts other modules derive from it agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from wallet_lake import settings as S

ROOT = Path(__file__).resolve().parents[2]
# The AWS SDK's own variables, set for moto in stack/local.env; not ours to declare.
SDK_VARIABLES = {"AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def declared() -> set[str]:
    return {var for group in S.GROUPS for var in S.env_names(group).values()}


def test_the_readme_table_is_the_rendering_of_the_declarations():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == S.markdown_table(), "README out of date: python -m wallet_lake.settings markdown"


def test_every_variable_of_the_local_stack_is_declared():
    names = {line.split("=", 1)[0] for line in (ROOT / "stack" / "local.env").read_text().splitlines()
             if line and not line.startswith("#") and "=" in line}
    assert names - SDK_VARIABLES - declared() == set()


def test_every_declared_variable_has_a_doc_and_a_unique_name():
    seen: dict[str, str] = {}
    for group in S.GROUPS:
        for field, var in S.env_names(group).items():
            owner = next(g for g in group.__mro__ if field in getattr(g, "__annotations__", {}))
            assert seen.setdefault(var, owner.__name__) == owner.__name__, f"{var} declared twice"
            assert S.doc(group, field), f"{var} has no doc"


# Reading a WL_ variable (or AWS_REGION) outside settings.py: os.environ[...]/.get(...), getenv,
# or a mapping's .get/[...] of a literal name.
_DIRECT_READ = re.compile(r"""(?:environ|getenv|env)\s*(?:\.get\(|\[|\()\s*f?["'](WL_[A-Z0-9_]+|AWS_REGION)["']""")
# Where a direct read is the right thing, and why.
ALLOWED = {
    "wallet_lake/settings.py": "the declarations",
}


def test_no_module_reads_a_setting_behind_the_declarations():
    offenders = []
    for folder in ("wallet_lake", "api"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for var in _DIRECT_READ.findall(path.read_text()):
                if ALLOWED.get(rel) not in (var, "the declarations"):
                    offenders.append(f"{rel}: {var}")
    assert offenders == []


# The modules that read the process environment at all (os.environ, os.getenv, ...), and why;
# every other module takes a mapping or leaves `env=None` to settings.load / security.secrets.
READS_THE_ENVIRONMENT = {
    "wallet_lake/settings.py": "the declarations",
    "wallet_lake/security/secrets.py": "secrets: NAME and NAME_SECRET_ID, and resolve_into_environ's writes",
}
_ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(source: str) -> list[int]:
    """Lines of `source` that touch the process environment (code only, not docstrings)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in _ENVIRONMENT_NAMES and isinstance(node.value, ast.Name) and node.value.id == "os":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & _ENVIRONMENT_NAMES:
            lines.append(node.lineno)
    return sorted(lines)


def test_the_detector_finds_every_form_of_environment_read():
    assert environment_reads("import os\nx = os.environ.get('A')\ny = os.getenv('B')\nfrom os import environ\n") == [2, 3, 4]
    assert environment_reads('"""default os.environ"""\nenv = {}\nenv.get("WL_X")\n') == []


def test_only_the_settings_and_secrets_modules_read_the_environment():
    offenders = []
    for folder in ("wallet_lake", "api"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in READS_THE_ENVIRONMENT:
                offenders += [f"{rel}:{line}" for line in environment_reads(path.read_text())]
    assert offenders == [], "read settings through wallet_lake.settings.load (or secrets through security/secrets.py)"


def test_errors_name_the_variable_and_never_echo_a_value():
    with pytest.raises(S.SettingsError, match="WL_LANDING_LOOKBACK_DAYS") as info:
        S.load(S.LandingSettings, {"WL_LANDING_LOOKBACK_DAYS": "secret-looking-value-123"})
    assert "secret-looking-value-123" not in str(info.value)
    with pytest.raises(S.SettingsError, match="WL_PG_HOST"):
        S.load(S.PostgresEndpoint, {"WL_PG_DB": "x"})
    assert S.load(S.LandingSettings, {"WL_LANDING_LOOKBACK_DAYS": " "}).landing_lookback_days == 2  # blank = unset


def test_facts_derived_elsewhere_agree_with_the_declarations():
    from wallet_lake.security.secrets import KNOWN_SECRETS
    from wallet_lake.serving.connect_worker import DEFAULT_SINK_SECRET
    from wallet_lake.serving.pg_roles import ROLES

    assert KNOWN_SECRETS == S.SECRET_NAMES
    assert DEFAULT_SINK_SECRET == ROLES["sink"].password_env  # the sink's secret is its own role's
    for role in ROLES.values():
        assert role.user_env in declared() and role.password_env in S.SECRET_NAMES


def test_replication_factors_reach_the_resources(monkeypatch: pytest.MonkeyPatch):
    """WL_KAFKA_REPLICATION_FACTOR (the topics provisioning creates) and
    WL_CONNECT_REPLICATION_FACTOR (the sink's dead-letter topic) are read, not just documented."""
    from wallet_lake.resources import resource_values

    monkeypatch.setenv("WL_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("WL_CONNECT_REPLICATION_FACTOR", "3")
    res = resource_values(lambda name, kind: "not-a-real-secret")
    assert res["kafka"].replication_factor == 3 and res["connect"].replication_factor == 3
