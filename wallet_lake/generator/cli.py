"""python -m wallet_lake.generator --start 2026-11-24T00 --end 2026-11-25T00 [--seed 42]
[--events-per-hour 400] [--lake s3://bucket | /dir]: write synthetic landing hours."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from wallet_lake.generator.events import HourStats, generate_with_stats
from wallet_lake.generator.writer import write_generated
from wallet_lake.lake.store import LakeStore, open_lake, open_lake_from_env

_HOUR_FORMATS = ("%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def parse_hour(text: str) -> datetime:
    """A UTC hour such as 2026-11-24T13 (a trailing Z is allowed; a date means its 00 hour)."""
    raw = text.strip().removesuffix("Z").removesuffix("z")
    for fmt in _HOUR_FORMATS:
        try:
            dt = datetime.strptime(raw, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        if dt.minute or dt.second:
            raise argparse.ArgumentTypeError(f"{text!r} is not on an hour boundary")
        return dt
    raise argparse.ArgumentTypeError(f"{text!r} is not an hour like 2026-11-24T13")


def _open(lake: str | None) -> LakeStore:
    if lake is None:
        return open_lake_from_env()
    # An explicit s3:// lake still takes its KMS key and endpoint from the environment.
    from wallet_lake.settings import AwsSettings, load

    aws = load(AwsSettings)
    return open_lake(lake, kms_key_id=aws.kms_key_id, s3_endpoint_url=aws.s3_endpoint_url, region=aws.aws_region)


def _summary(s: HourStats) -> str:
    return (f"lines={s.lines} bad={s.bad_lines} dup_ids={s.duplicate_id_lines} late={s.late_lines} "
            f"refunds={s.refund_lines} chargebacks={s.chargeback_lines}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wallet_lake.generator", description=__doc__.split(":")[-1].strip())
    p.add_argument("--start", required=True, type=parse_hour, help="first landing hour (UTC), e.g. 2026-11-24T00")
    p.add_argument("--end", required=True, type=parse_hour, help="end hour (UTC, exclusive), e.g. 2026-11-25T00")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--events-per-hour", type=int, default=400)
    p.add_argument("--merchants", type=int, default=50)
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--lake", default=None,
                   help="s3://bucket or a directory; default WL_LAKE_URI or s3://$WL_LAKE_BUCKET")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error("--end must be after --start")
    if args.seed < 0 or args.events_per_hour < 0:
        parser.error("--seed and --events-per-hour must be >= 0")
    try:
        store = _open(args.lake)
    except KeyError:
        parser.error("no --lake given and neither WL_LAKE_URI nor WL_LAKE_BUCKET is set")
    except ValueError as e:
        parser.error(str(e))

    generated = generate_with_stats(args.start, args.end, args.seed, events_per_hour=args.events_per_hour,
                                    merchants=args.merchants, users=args.users)

    def report(hour: datetime, key: str, s: HourStats) -> None:
        print(f"{hour:%Y-%m-%dT%H} {key} {_summary(s)}", flush=True)

    write_generated(store, generated, args.seed, on_hour=report)
    t = generated.stats.total
    print(f"total: hours={len(generated.lines)} {_summary(t)} "
          f"bad_share={generated.stats.bad_share:.2%} dup_share={generated.stats.duplicate_share:.2%} "
          f"lake={store.uri}")
    return 0
