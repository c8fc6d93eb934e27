"""The curated_payments materialization from the hours' figures (lake.manifests.HourStats as
dicts, whether the hours ran in this process or on Glue and came back through Pipes): metadata
and the asset checks. The blocking checks use the same predicates that gated publishing
(transforms.checks.failed_checks), so a failed check is an hour that was not published."""

from __future__ import annotations

import json
from typing import Sequence

import dagster as dg

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS
from wallet_lake.transforms.checks import CHECK_DESCRIPTIONS, failed_checks

ASSET = dg.AssetKey(CURATED_PAYMENTS)
QUARANTINE_RATE = "quarantine_rate_below_threshold"

def check_specs() -> list[dg.AssetCheckSpec]:
    specs = [dg.AssetCheckSpec(name, asset=ASSET, blocking=True, description=d) for name, d in CHECK_DESCRIPTIONS.items()]
    specs.append(dg.AssetCheckSpec(QUARANTINE_RATE, asset=ASSET, blocking=False,
                                   description="WARN when an hour quarantines more than the configured share of its raw lines."))
    return specs


def _sum(hours: Sequence[dict], key: str) -> int:
    return sum(int(h.get(key) or 0) for h in hours)


def preview_markdown(rows: list[dict], columns=("dt", "merchant_id", "payment_id", "status", "amount_cents", "currency", "created_at")) -> str:
    if not rows:
        return "_no curated rows_"
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "\n".join("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in columns) + " |" for r in rows)


def materialize_result(hours: Sequence[dict], *, launcher: str, quarantine_warn_rate: float, extra: dict | None = None) -> dg.MaterializeResult:
    reasons: dict[str, int] = {}
    for h in hours:
        for r, n in (h.get("quarantine_reasons") or {}).items():
            reasons[r] = reasons.get(r, 0) + int(n)
    raw = _sum(hours, "raw_lines")
    failed = {h["landing_hour"]: failed_checks(h) for h in hours}
    per_hour = {
        h["landing_hour"]: {
            "raw": h["raw_lines"], "curated": h["curated_rows"], "quarantined": h["quarantined_rows"],
            "duplicates": h["duplicates_removed"], "files": h["curated_files"], "bytes": h["curated_bytes"],
            "reasons": h.get("quarantine_reasons") or {}, "published": h.get("published", False),
        }
        for h in hours
    }
    preview = next((h["preview"] for h in hours if h.get("preview")), [])
    metadata = {
        "raw_lines": raw,
        "curated_rows": _sum(hours, "curated_rows"),
        "quarantined_rows": _sum(hours, "quarantined_rows"),
        "duplicates_removed": _sum(hours, "duplicates_removed"),
        "quarantine_rate": round(_sum(hours, "quarantined_rows") / raw, 6) if raw else 0.0,
        "quarantine_reasons": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "curated_files": _sum(hours, "curated_files"),
        "curated_bytes": _sum(hours, "curated_bytes"),
        "quarantine_files": _sum(hours, "quarantine_files"),
        "quarantine_bytes": _sum(hours, "quarantine_bytes"),
        "hours": len(hours),
        "hours_published": sum(1 for h in hours if h.get("published")),
        "per_hour": dg.MetadataValue.json(per_hour),
        "preview": dg.MetadataValue.md(preview_markdown(preview)),
        "launcher": launcher,
        "curation_run_id": hours[0]["run_id"] if hours else "",
        "spark_seconds": float((hours[0].get("seconds") or {}).get("spark", 0.0)) if hours else 0.0,
        **(extra or {}),
    }
    checks = []
    for name in CHECK_DESCRIPTIONS:
        bad = {hour: why[name] for hour, why in failed.items() if name in why}
        checks.append(dg.AssetCheckResult(
            check_name=name, asset_key=ASSET, passed=not bad,
            metadata={"hours_checked": len(hours), "failed_hours": dg.MetadataValue.json(bad)},
        ))
    rates = {h["landing_hour"]: (h["quarantined_rows"] / h["raw_lines"] if h["raw_lines"] else 0.0) for h in hours}
    over = {k: round(v, 6) for k, v in rates.items() if v > quarantine_warn_rate}
    checks.append(dg.AssetCheckResult(
        check_name=QUARANTINE_RATE, asset_key=ASSET, passed=not over, severity=dg.AssetCheckSeverity.WARN,
        metadata={"threshold": quarantine_warn_rate, "max_rate": round(max(rates.values(), default=0.0), 6),
                  "hours_over": dg.MetadataValue.json(over)},
    ))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def hours_from_pipes(result: dg.MaterializeResult) -> list[dict]:
    """The hours' figures a Glue run reported through Pipes."""
    value = (result.metadata or {}).get("hours")
    data = getattr(value, "data", value)
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, list):
        raise dg.Failure("the Glue run reported no per-hour figures (metadata 'hours')")
    return data
