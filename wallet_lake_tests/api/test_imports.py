"""The API process must stay light: no dagster or pyspark, even through wallet_lake imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_api_does_not_import_dagster_or_pyspark() -> None:
    code = (
        "import sys, api.main\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'pyspark'})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_api_and_lake_layer_load_engines_only_when_used() -> None:
    # DuckDB, pyarrow and pyathena are for source=lake requests; starting the API needs none.
    code = (
        "import sys, api.main, wallet_lake.lake.query, wallet_lake.serving.aggregates\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'pyspark', 'duckdb', 'pyarrow', 'pyathena'})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
