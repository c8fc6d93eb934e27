"""The java of the stack's Kafka processes, for Python that starts one more (the benchmark's
ProducerPerformance, a test's second Connect worker): the JDK stack/lib.sh chose for the broker
and the Connect worker (WL_KAFKA_JAVA_HOME, exported by `stack/wallet-stack env`), so that they
run on the same Java; empty or unset: the java on PATH."""

from __future__ import annotations

import os
import subprocess


def kafka_java() -> str:
    home = os.environ.get("WL_KAFKA_JAVA_HOME")
    return os.path.join(home, "bin", "java") if home else "java"


def kafka_java_version() -> str:
    """The first line of `java -version` (for benchmark records)."""
    lines = subprocess.run([kafka_java(), "-version"], capture_output=True, text=True).stderr.splitlines()
    return lines[0] if lines else "?"
