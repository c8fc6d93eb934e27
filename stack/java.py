"""The java of the stack's Kafka processes, for Python that starts one more (the benchmark's
ProducerPerformance, a test's second Connect worker) or records which one ran: the JDK that
stack/lib.sh's kafka_java_home chooses for the broker and the Connect worker, so that all run on
the same Java. `stack/wallet-stack env` exports the choice as WL_KAFKA_JAVA_HOME; where the
environment does not hold it (a plain `pytest`), lib.sh is asked, so the choice is made in one
place. An empty answer means the java on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kafka_java_home() -> str:
    if home := os.environ.get("WL_KAFKA_JAVA_HOME"):
        return home
    return subprocess.run(["bash", "-c", 'source "$1/stack/lib.sh" && kafka_java_home', "kafka_java_home", str(ROOT)],
                          capture_output=True, text=True, check=True).stdout


def kafka_java() -> str:
    home = kafka_java_home()
    return os.path.join(home, "bin", "java") if home else "java"


def java_version(java: str) -> str:
    """The first line of `<java> -version`."""
    lines = subprocess.run([java, "-version"], capture_output=True, text=True, check=True).stderr.splitlines()
    return lines[0] if lines else "?"


def service_java(service: str) -> Path:
    """The java binary a running stack service (kafka, connect) was started with."""
    pid = (Path(os.environ.get("WL_STACK_DIR", ROOT / ".stack")) / "pids" / f"{service}.pid").read_text().strip()
    return Path(f"/proc/{pid}/exe").resolve()
