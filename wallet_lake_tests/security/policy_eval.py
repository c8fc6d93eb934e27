"""A small, explicit IAM policy evaluator for the tests (the local AWS API cannot simulate
policies: IAM simulate_custom_policy answers 500, and moto's S3 ignores conditions).

evaluate(statements, action, resource, context) follows AWS's order for one principal: an
explicit Deny wins, then any Allow, otherwise an implicit deny. Matching: actions
case-insensitively with * and ? wildcards, resources case-sensitively; conditions with the
operators the project's policies use (String*, Arn*, Bool, Null, each with ...IfExists)."""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable, Mapping

ALLOW, DENY, IMPLICIT_DENY = "allow", "deny", "implicit-deny"


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, case_sensitive: bool) -> bool:
    regex = fnmatch.translate(pattern)
    return re.match(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def action_matches(patterns, action: str) -> bool:
    return any(_glob(p, action, case_sensitive=False) for p in _as_list(patterns))


def resource_matches(patterns, resource: str) -> bool:
    return any(_glob(p, resource, case_sensitive=True) for p in _as_list(patterns))


def _condition_holds(operator: str, key: str, expected, context: Mapping[str, object]) -> bool:
    if_exists = operator.endswith("IfExists")
    op = operator[: -len("IfExists")] if if_exists else operator
    present = key in context
    if op == "Null":
        want_absent = str(_as_list(expected)[0]).lower() == "true"
        return (not present) == want_absent
    if not present:
        # Negated operators hold for a missing key; ...IfExists holds for a missing key.
        return if_exists or op.startswith(("StringNot", "ArnNot"))
    actual = [str(v) for v in _as_list(context[key])]
    values = [str(v) for v in _as_list(expected)]
    if op == "Bool":
        return any(a.lower() == v.lower() for a in actual for v in values)
    if op in ("StringEquals", "ArnEquals"):
        return any(a == v for a in actual for v in values)
    if op in ("StringNotEquals", "ArnNotEquals"):
        return all(a != v for a in actual for v in values)
    if op in ("StringLike", "ArnLike"):
        return any(_glob(v, a, True) for a in actual for v in values)
    if op in ("StringNotLike", "ArnNotLike"):
        return not any(_glob(v, a, True) for a in actual for v in values)
    raise ValueError(f"condition operator {operator} is not supported by this evaluator")


def conditions_hold(condition: Mapping | None, context: Mapping[str, object]) -> bool:
    for operator, pairs in (condition or {}).items():
        for key, expected in pairs.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def statement_applies(st: Mapping, action: str, resource: str, context: Mapping[str, object]) -> bool:
    if "Action" in st and not action_matches(st["Action"], action):
        return False
    if "NotAction" in st and action_matches(st["NotAction"], action):
        return False
    if "Resource" in st and not resource_matches(st["Resource"], resource):
        return False
    if "NotResource" in st and resource_matches(st["NotResource"], resource):
        return False
    return conditions_hold(st.get("Condition"), context)


def evaluate(statements: Iterable[Mapping], action: str, resource: str, context: Mapping[str, object] | None = None) -> str:
    context = context or {}
    applicable = [st for st in statements if statement_applies(st, action, resource, context)]
    if any(st["Effect"] == "Deny" for st in applicable):
        return DENY
    if any(st["Effect"] == "Allow" for st in applicable):
        return ALLOW
    return IMPLICIT_DENY
