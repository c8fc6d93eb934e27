"""The readers of the curated lake need pyarrow, never pyspark: the publish and serving assets,
the lake query layer, replay and sweep import no pyspark module (each checked in a fresh
interpreter, since this test process has Spark loaded already). The curation shell does import
it: the check sees pyspark where it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READERS = [
    "wallet_lake.defs.publish.assets",
    "wallet_lake.defs.serving.assets",
    "wallet_lake.lake.query",
    "wallet_lake.lake.reader",
    "wallet_lake.lake.replay",
    "wallet_lake.lake.sweep",
    "wallet_lake.publish.hour",
    "wallet_lake.serving.verify",
]


def spark_modules_after_import(module: str) -> list[str]:
    code = (
        f"import sys, {module}\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'dagster_pyspark'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", READERS)
def test_reader_modules_import_no_pyspark(module: str) -> None:
    assert spark_modules_after_import(module) == []


def test_the_curation_shell_is_where_pyspark_is_imported() -> None:
    assert "pyspark" in spark_modules_after_import("wallet_lake.lake.curation_run")
