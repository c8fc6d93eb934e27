"""Where the curation's Spark time goes, stage by stage, and how Spark settings change it (run by
hand, never in the test suite; prints, writes nothing under bench/results).

A generated hour (--events lines in --objects NDJSON files, local disk, no S3) goes through
lake/spark_runner.run_jobs, the jobs the curation worker runs, --reps times in one Spark session
per variant (the first rep warms the JIT). Each variant is a JSON object of Spark settings laid
over wallet_lake.spark.spark_config(), in a fresh Python process (settings such as driver JVM
options only apply to a new JVM). Per rep: wall time and, from Spark's status API, each stage's
tasks, task time, task CPU, GC and shuffle bytes.

    .venv/bin/python bench/curation_stages.py --variant '{}' --variant '{"spark.sql.shuffle.partitions": "4"}'
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOUR = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
UI_PORT = 4047


def generate(workdir: Path, events: int, objects: int) -> list[str]:
    from wallet_lake.generator.events import generate_with_stats, to_ndjson

    raw = workdir / f"raw-{events}-{objects}"
    if not raw.exists():
        lines = generate_with_stats(HOUR, HOUR + timedelta(hours=1), seed=7, events_per_hour=events).lines[HOUR]
        tmp = raw.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for i in range(objects):
            (tmp / f"{i:05d}.ndjson").write_bytes(to_ndjson(lines[i::objects]))
        tmp.rename(raw)
    return sorted(glob.glob(str(raw / "*.ndjson")))


def measure(paths: list[str], workdir: Path, variant: dict, reps: int) -> None:
    """One variant in this process: its own Spark session."""
    from pyspark.sql import SparkSession

    from wallet_lake.contracts.landing import hour_token
    from wallet_lake.lake import spark_runner
    from wallet_lake.lake.curation_run import CurationSettings
    from wallet_lake.spark import spark_config
    from wallet_lake.transforms import curate as rules

    conf = {**spark_config(), "spark.ui.enabled": "true", "spark.ui.port": str(UI_PORT), **variant}
    spark = SparkSession.builder.config(map=conf).getOrCreate()
    for k, v in rules.SPARK_CONF.items():
        spark.conf.set(k, v)
    app = spark.sparkContext.applicationId

    def stages() -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{UI_PORT}/api/v1/applications/{app}/stages?status=complete") as r:
            return json.load(r)

    out = workdir / "out"
    print(f"variant {json.dumps(variant)}", flush=True)
    settings = CurationSettings()  # the runs' own split size, file size and quarantine bound
    for rep in range(reps):
        seen = {s["stageId"] for s in stages()}
        shutil.rmtree(out, ignore_errors=True)
        inputs = [spark_runner.HourInput(token=hour_token(HOUR), hour=HOUR, paths=paths, keys={p: p for p in paths})]
        t = time.perf_counter()
        counts = spark_runner.run_jobs(spark, inputs, str(out), datetime.now(timezone.utc), accepted_statuses=settings.accepted_statuses,
                                       split_bytes=settings.split_bytes, max_records_per_file=settings.max_records_per_file,
                                       one_pass_bytes=settings.quarantine_one_pass_bytes)
        wall = time.perf_counter() - t
        files = len(glob.glob(str(out / "curated" / "**" / "*.parquet"), recursive=True))
        print(f"  rep {rep}: wall {wall:.2f} s, {files} curated files, lines {sum(counts.lines.values())}, "
              f"duplicates {sum(counts.duplicates.values())}", flush=True)
        for s in sorted((s for s in stages() if s["stageId"] not in seen), key=lambda s: s["stageId"]):
            print(f"    stage {s['stageId']:3d} tasks {s['numTasks']:3d} task time {s['executorRunTime'] / 1000:6.2f} s "
                  f"cpu {s['executorCpuTime'] / 1e9:6.2f} s gc {s.get('jvmGcTime', 0) / 1000:5.2f} s "
                  f"shuffle write {s['shuffleWriteBytes'] / 2**20:6.1f} MiB read {s['shuffleReadBytes'] / 2**20:6.1f} MiB  {s['name'][:50]}",
                  flush=True)
    spark.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--objects", type=int, default=8)
    p.add_argument("--reps", type=int, default=4, help="runs per variant; the first warms the JIT")
    p.add_argument("--variant", action="append", default=None, help="JSON object of Spark settings (repeatable; default: the project's)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/wl-curation-stages"))
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant in this process
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = generate(args.workdir, args.events, args.objects)
    if args.one is not None:
        measure(paths, args.workdir, json.loads(args.one), args.reps)
        return 0
    for variant in args.variant or ["{}"]:
        json.loads(variant)  # fail early on a typo
        cmd = [sys.executable, __file__, "--events", str(args.events), "--objects", str(args.objects), "--reps", str(args.reps),
               "--workdir", str(args.workdir), "--one", variant]
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
