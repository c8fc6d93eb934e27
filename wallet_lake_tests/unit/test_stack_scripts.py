"""The stack scripts (stack/wallet-stack, scripts/*, .ci/run): each header names the versions the
script installs or starts, equal to the one place each version is declared; and the start, stop,
wait and install mechanics live in stack/lib.sh only, which every script uses."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from wallet_lake_tests.stack_versions import pg_major

ROOT = Path(__file__).resolve().parents[2]

# What each script installs or starts, itself or through the scripts it calls.
STACK = {"PostgreSQL", "Kafka", "Debezium JDBC sink", "moto", "Python", "Chart.js"}
PINS = {
    "stack/wallet-stack": STACK | {"Connect basic auth", "Dagster", "PySpark", "uvicorn"},
    "scripts/run": STACK | {"Dagster", "PySpark", "uvicorn"},
    "scripts/test": STACK | {"pytest", "Playwright", "Chromium", "HAProxy"},
    ".ci/run": STACK | {"pytest", "Playwright", "Chromium", "HAProxy"},
    "scripts/install-python.sh": {"Python", "pip"},
    "scripts/install-ui.sh": {"Chart.js", "Node.js", "npm"},
    "scripts/install-browser.sh": {"Chromium", "Playwright"},
    "scripts/install-balancer.sh": {"HAProxy"},
}
SHELL_SCRIPTS = ["stack/lib.sh", *PINS]


def text(path: str) -> str:
    return (ROOT / path).read_text()


def one(pattern: str, source: str, where: str) -> str:
    found = re.findall(pattern, source, re.MULTILINE)
    assert len(found) == 1, f"{where}: expected one match of {pattern!r}, found {found}"
    return found[0]


def apt_pin(script: str, package: str) -> str:
    """The version the script's `apt_install WHAT [option...] package...` asks for: 'unpinned'
    when it names the bare package (apt-get then installs the distribution's current one)."""
    line = one(r"apt_install (.*)$", text(script), script)
    packages = [word for word in line.split()[1:] if not word.startswith("-")]
    if package in packages:
        return "unpinned"
    return one(rf"^{re.escape(package)}=(\S+)$", "\n".join(packages), script)


def declared_versions() -> dict[str, str]:
    """Each version read from where it is declared (no copy of any of them here)."""
    pom = text("stack/kafka/pom.xml")
    constraints = dict(line.split("==", 1) for line in text("constraints.txt").splitlines() if "==" in line and not line.startswith("#"))
    requires = tomllib.loads(text("pyproject.toml"))["project"]["requires-python"]
    lock = json.loads(text("api/ui/package-lock.json"))
    return {
        "PostgreSQL": pg_major(),
        "Kafka": one(r"<kafka\.version>([^<]+)<", pom, "pom.xml"),
        "Debezium JDBC sink": one(r"<debezium\.version>([^<]+)<", pom, "pom.xml"),
        "Connect basic auth": one(r"<connect\.basic\.auth\.version>([^<]+)<", pom, "pom.xml"),
        "Python": one(r"^>=(\d+\.\d+),<", requires, "requires-python"),
        "pip": one(r"pip==([^\"\s]+)", text("scripts/install-python.sh"), "install-python.sh"),
        "Chart.js": lock["packages"]["node_modules/chart.js"]["version"],
        "Chromium": apt_pin("scripts/install-browser.sh", "chromium"),
        "HAProxy": apt_pin("scripts/install-balancer.sh", "haproxy"),
        "Node.js": apt_pin("scripts/install-ui.sh", "nodejs"),
        "npm": apt_pin("scripts/install-ui.sh", "npm"),
        **{name: constraints[pkg] for name, pkg in
           {"moto": "moto", "Dagster": "dagster", "PySpark": "pyspark", "uvicorn": "uvicorn",
            "pytest": "pytest", "Playwright": "playwright"}.items()},
    }


# Copies of declared versions in files that cannot read the declaration (Compose, Dockerfiles, a
# second Maven project, Markdown tables): file -> [(version name, pattern capturing the copy)].
# Every pattern must match at least once and every match must equal the declared version (a
# README table that names only major.minor must be its prefix).
COPIES = {
    "docker-compose.yml": [("PostgreSQL", r"image: postgres:(\S+)"), ("Kafka", r"image: apache/kafka:(\S+)"),
                           ("moto", r"image: motoserver/moto:(\S+)")],
    "docker/connect/Dockerfile": [("Kafka", r"^FROM apache/kafka:(\S+)"), ("Kafka", r"-Dkafka\.version=(\S+)"),
                                  ("Debezium JDBC sink", r"^ARG DEBEZIUM_VERSION=(\S+)")],
    "docker/README.md": [("PostgreSQL", r"\| `postgres:([^`]+)` \("), ("Kafka", r"`apache/kafka:([^`]+)`"),
                         ("Debezium JDBC sink", r"Debezium JDBC sink (\S+) \|"), ("moto", r"`motoserver/moto:([^`]+)`")],
    "README.md": [("PostgreSQL", r"^\| PostgreSQL (\S+) \|"), ("PostgreSQL", r"Debian `postgresql-([^`]+)`"),
                  ("Kafka", r"^\| Kafka (\d\S*) \("), ("Debezium JDBC sink", r"Debezium JDBC sink (\S+) \|")],
    # Built by stack/wallet-stack with -Dkafka.version from stack/kafka/pom.xml; this is the default
    # of a standalone `mvn package`.
    "connect/secrets-manager-provider/pom.xml": [("Kafka", r"<kafka\.version>([^<]+)<")],
    "connect/copy-sink/pom.xml": [("Kafka", r"<kafka\.version>([^<]+)<")],
}


def copies_that_differ(source: str, patterns: list[tuple[str, str]], declared: dict[str, str]) -> list[str]:
    wrong = []
    for name, pattern in patterns:
        found = re.findall(pattern, source, re.MULTILINE)
        if not found:
            wrong.append(f"{name}: no match of {pattern!r}")
        wrong += [f"{name} {v} (declared {declared[name]})" for v in found
                  if not (v == declared[name] or declared[name].startswith(v + "."))]
    return wrong


@pytest.mark.parametrize("path", sorted(COPIES))
def test_copies_of_declared_versions_equal_the_declarations(path: str) -> None:
    assert copies_that_differ(text(path), COPIES[path], declared_versions()) == [], path


def test_a_differing_or_missing_copy_is_found() -> None:
    declared = {"Kafka": "4.2.1"}
    assert copies_that_differ("FROM apache/kafka:4.2.1", [("Kafka", r"^FROM apache/kafka:(\S+)")], declared) == []
    assert copies_that_differ("| Kafka 4.2 (KRaft", [("Kafka", r"^\| Kafka (\d\S*) \(")], declared) == []
    assert copies_that_differ("FROM apache/kafka:4.1.0", [("Kafka", r"^FROM apache/kafka:(\S+)")], declared) == ["Kafka 4.1.0 (declared 4.2.1)"]
    assert copies_that_differ("| Kafka 4.1 (KRaft", [("Kafka", r"^\| Kafka (\d\S*) \(")], declared) == ["Kafka 4.1 (declared 4.2.1)"]
    assert len(copies_that_differ("FROM kafka:latest", [("Kafka", r"^FROM apache/kafka:(\S+)")], declared)) == 1


def test_no_python_module_or_test_helper_copies_the_postgres_major() -> None:
    # Its binaries' folder comes from wallet_lake_tests/stack_versions.py (PG_MAJOR of stack/wallet-stack).
    copies = [str(p.relative_to(ROOT)) for folder in ("wallet_lake", "wallet_lake_tests", "api", "bench")
              for p in (ROOT / folder).rglob("*.py") if re.search(r"postgresql/\d+|PostgreSQL \d+", p.read_text())]
    assert copies == []


def header_versions(script: str) -> dict[str, str]:
    return parse_versions(text(script))


def parse_versions(source: str) -> dict[str, str]:
    """The header's `# Versions: Name version, ...` line (continued while it ends with a comma),
    without its parenthesised note."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Versions: "))
    body = lines[start].removeprefix("# Versions: ")
    while body.rstrip().endswith(","):
        start += 1
        body += " " + lines[start].lstrip("# ")
    body = re.sub(r"\(.*", "", body)
    pairs = [item.strip().rsplit(" ", 1) for item in body.split(",")]
    return {name: version for name, version in pairs}


@pytest.mark.parametrize("script", sorted(PINS))
def test_each_script_header_names_the_declared_versions_of_what_it_installs_or_starts(script: str) -> None:
    declared = declared_versions()
    assert header_versions(script) == {name: declared[name] for name in PINS[script]}


def test_the_header_parser_reads_names_with_spaces_and_continuation_lines() -> None:
    source = "#!/bin/sh\n# What it does.\n# Versions: Big Thing 1.2.3.Final, tool 2,\n#   Other 0.1 (from x, y)\nset -e\n"
    assert parse_versions(source) == {"Big Thing": "1.2.3.Final", "tool": "2", "Other": "0.1"}


def test_the_stack_script_takes_kafka_versions_from_the_pom_only() -> None:
    # A second `KAFKA_VERSION=4.x` in a script is how the header and the jars drifted before.
    for script in SHELL_SCRIPTS:
        assert not re.search(r"KAFKA_VERSION=\d", text(script)), script


def defined_functions(script: str) -> list[str]:
    return re.findall(r"^([a-z_]+)\(\) \{", text(script), re.MULTILINE)


def test_start_stop_wait_and_install_helpers_are_defined_once_in_lib_sh() -> None:
    shared = set(defined_functions("stack/lib.sh"))
    assert {"start_bg", "wait_for", "stop_pid", "pid_alive", "require_port_free", "apt_install", "stack_up", "stack_down"} <= shared
    for script in PINS:
        assert not shared & set(defined_functions(script)), f"{script} redefines a helper of stack/lib.sh"
        assert 'source "$ROOT/stack/lib.sh"' in text(script) or script == "scripts/install-python.sh", script


@pytest.mark.parametrize("command", ["setsid ", "apt-get install", "kill -TERM", "sleep 1"])
def test_only_lib_sh_starts_stops_waits_or_installs_packages(command: str) -> None:
    assert [s for s in SHELL_SCRIPTS if command in text(s)] == ["stack/lib.sh"]


def _kafka_java(tmp_path: Path, **env: str) -> str:
    """KAFKA_JAVA as stack/lib.sh's load_env resolves it, in a scratch stack folder."""
    import os
    import subprocess

    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    base |= {"ROOT": str(ROOT), "WL_STACK_DIR": str(tmp_path / "stack"), "WL_CACHE_DIR": str(tmp_path / "cache"),
             "DAGSTER_HOME": str(tmp_path / "dagster"), **env}
    out = subprocess.run(["bash", "-c", 'source "$ROOT/stack/lib.sh"; load_env; printf %s "$KAFKA_JAVA"'],
                         env=base, capture_output=True, text=True, check=True)
    return out.stdout


def test_the_kafka_jdk_is_the_one_set_in_wl_kafka_java_home(tmp_path: Path) -> None:
    assert _kafka_java(tmp_path, WL_KAFKA_JAVA_HOME="/opt/some-jdk") == "/opt/some-jdk/bin/java"


def test_an_empty_wl_kafka_java_home_means_the_default_choice(tmp_path: Path) -> None:
    assert _kafka_java(tmp_path, WL_KAFKA_JAVA_HOME="") == _kafka_java(tmp_path)


def test_the_kafka_jdk_is_java_25_when_the_machine_has_one(tmp_path: Path) -> None:
    # Kafka 4.2 recommends the newest LTS; the sink ran faster on it (docs/benchmarks.md, session 16).
    import subprocess

    java = _kafka_java(tmp_path)
    if java == "java":  # no Java 25 found: the PATH's java, whatever it is
        assert not any(p.name.startswith(("temurin-25-", "java-25-")) for p in Path("/usr/lib/jvm").glob("*/")), "a Java 25 JDK was missed"
        return
    version = subprocess.run([java, "-version"], capture_output=True, text=True, check=True).stderr
    assert re.search(r'version "25[."]', version), version


def test_python_asks_lib_sh_for_the_kafka_jdk_when_the_environment_does_not_say(tmp_path: Path, monkeypatch) -> None:
    from stack.java import kafka_java

    monkeypatch.delenv("WL_KAFKA_JAVA_HOME", raising=False)
    assert kafka_java() == _kafka_java(tmp_path)
    monkeypatch.setenv("WL_KAFKA_JAVA_HOME", "/opt/some-jdk")
    assert kafka_java() == "/opt/some-jdk/bin/java"
