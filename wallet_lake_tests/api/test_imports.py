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
