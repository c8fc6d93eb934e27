"""Contracts rendered, never copied (issue 13, part 2): each fact of wallet_lake/contracts reaches
its readers as a rendering, and no hand-written second copy is left in the code.

Each rendering is compared with its contract; the "no copy" scans are precise: they look for the
shape a copy would take (a status list or rank map, a quarantine column declaration, a literal
pipeline asset key in a Dagster call, a second definition of a report word), not for every
mention of a word. Pure, except the Spark session for the quarantine's written schema."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from wallet_lake.contracts import asset_keys, reports
from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES
from wallet_lake.contracts.schema import (
    QUARANTINE_COLUMNS,
    QUARANTINE_FIELDS,
    QUARANTINE_PARTITION_FIELD,
    arrow_schema,
    spark_schema,
)
from wallet_lake.lake import catalog
from wallet_lake.serving import contract_sql
from wallet_lake.serving.migrate import MIGRATIONS_DIR

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "wallet_lake" / "contracts"


def _python_files(*tops: str) -> Iterator[Path]:
    for top in tops:
        yield from sorted((ROOT / top).rglob("*.py"))


def _production_files() -> Iterator[Path]:
    """The code that reads the contracts (not the contracts themselves, nor the tests' oracles)."""
    return (p for p in _python_files("wallet_lake", "api") if CONTRACTS not in p.parents)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- statuses and ranks ----------------------------------------------------------------------------

_STATUS = "|".join(map(re.escape, ACCEPTED_STATUSES))
# A copy of the statuses or of their ranks: two statuses quoted side by side (a list, an IN (...)),
# a status mapped to a number (a dict), or a CASE branch giving a status its rank.
STATUS_COPY = re.compile(
    rf"""(['"])(?:{_STATUS})\1\s*,\s*(['"])(?:{_STATUS})\2"""
    rf"""|(['"])(?:{_STATUS})\3\s*:\s*\d"""
    rf"""|WHEN\s+'(?:{_STATUS})'\s+THEN\s+(?:RETURN\s+)?-?\d""",
    re.IGNORECASE,
)


def test_the_copy_pattern_finds_the_shapes_a_copy_takes() -> None:
    for copy in ("('APPROVED', 'REFUNDED')", '{"PENDING": 0}', "WHEN 'CHARGEBACK' THEN RETURN 3", "CASE status WHEN 'DECLINED' THEN 1"):
        assert STATUS_COPY.search(copy), copy
    for mention in ('status == "APPROVED"', '("APPROVED", 0.845)', "status = 'DECLINED' AND", "'APPROVED' AS x, 'PENDING'"):
        assert not STATUS_COPY.search(mention), mention


def test_no_code_outside_the_contracts_lists_statuses_or_ranks_by_hand() -> None:
    copies = [f"{_rel(p)}:{n}: {line.strip()}" for p in _production_files()
              for n, line in enumerate(p.read_text().splitlines(), 1) if STATUS_COPY.search(line)]
    assert not copies, "statuses or ranks copied by hand (import them from wallet_lake.contracts.lifecycle):\n" + "\n".join(copies)


def _without_rendered_block(text: str) -> str:
    block = contract_sql.rendered_block_of(text)
    return text.replace(block.rstrip("\n"), "") if block else text


def test_every_hand_written_status_list_in_a_migration_is_superseded_by_a_rendered_block() -> None:
    """Applied migrations are history: 0001 wrote the rank function by hand, and the newest
    rendered migration replaces it. A hand copy in that migration or a later one would be live."""
    newest, _ = contract_sql.newest_rendered_migration(MIGRATIONS_DIR)
    live = [p for p in sorted(MIGRATIONS_DIR.glob("*.sql")) if p.name.split(".")[0] >= newest.name.split(".")[0]]
    assert newest in live
    copies = [f"{p.name}: {line.strip()}" for p in live
              for line in _without_rendered_block(p.read_text()).splitlines() if STATUS_COPY.search(line)]
    assert not copies, "\n".join(copies)
    # ... and the scan does look at history: 0001's hand-written function is found there.
    history = [p for p in sorted(MIGRATIONS_DIR.glob("*.sql")) if p not in live]
    assert any(STATUS_COPY.search(p.read_text()) for p in history)


# --- the quarantine schema -------------------------------------------------------------------------

# Hive types of the logical types, restated here (the catalog's renderer is under test).
HIVE = {"string": "string", "int64": "bigint", "int32": "int", "timestamp": "timestamp", "string_array": "array<string>"}


def test_the_glue_quarantine_table_is_the_rendering_of_the_contract() -> None:
    table = catalog.quarantine_table_input("bucket")
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"], c["Comment"]) for c in columns] == [(f.name, HIVE[f.type], f.doc) for f in QUARANTINE_FIELDS]
    [part] = table["PartitionKeys"]
    assert (part["Name"], part["Type"]) == (QUARANTINE_PARTITION_FIELD.name, "string")
    name = QUARANTINE_PARTITION_FIELD.name
    assert table["Parameters"]["storage.location.template"].endswith(f"/{name}=${{{name}}}/")


def test_the_spark_quarantine_schema_is_the_rendering_of_the_contract() -> None:
    from pyspark.sql import types as T

    from wallet_lake.transforms.curate import QUARANTINE_SCHEMA

    assert QUARANTINE_SCHEMA == spark_schema(QUARANTINE_FIELDS)
    assert [f.name for f in QUARANTINE_SCHEMA.fields] == list(QUARANTINE_COLUMNS)
    reasons = QUARANTINE_SCHEMA["reasons"]
    assert reasons.dataType == T.ArrayType(T.StringType(), containsNull=False) and reasons.nullable is False


def test_the_quarantine_spark_writes_reads_back_as_the_contract(spark, tmp_path) -> None:
    """What curate() quarantines, written as Parquet, has the contract's columns and types for
    Spark and for pyarrow (the lake readers)."""
    import pyarrow.parquet as pq

    from wallet_lake.transforms.curate import RAW_INPUT_SCHEMA, curate

    raw = spark.createDataFrame([("q.ndjson", 1, "not json"), ("q.ndjson", 2, '{"payment_id": 1}')], RAW_INPUT_SCHEMA)
    quarantine = curate(raw, processed_at=datetime(2093, 1, 1, tzinfo=timezone.utc)).quarantine
    assert [(f.name, f.dataType) for f in quarantine.schema.fields] == [(f.name, f.dataType) for f in spark_schema(QUARANTINE_FIELDS).fields]
    quarantine.write.parquet(str(tmp_path / "q"))
    written = pq.read_table(tmp_path / "q").schema
    want = arrow_schema(QUARANTINE_FIELDS)
    assert [(f.name, f.type) for f in written] == [(f.name, f.type) for f in want]


# A declaration of a quarantine column outside the contract: a Spark StructField or a Glue
# (name, type, ...) tuple naming one.
_QCOLS = "|".join(map(re.escape, QUARANTINE_COLUMNS))
QUARANTINE_COPY = re.compile(
    rf"""StructField\(\s*(['"])(?:{_QCOLS})\1|\(\s*(['"])(?:{_QCOLS})\2\s*,\s*['"](?:string|bigint|int|timestamp|array<string>)['"]"""
)


def test_no_code_outside_the_contracts_declares_a_quarantine_column() -> None:
    assert QUARANTINE_COPY.search('T.StructField("raw_line", T.StringType(), True)')
    assert QUARANTINE_COPY.search('("reasons", "array<string>", "Every rule")')
    copies = [f"{_rel(p)}:{n}: {line.strip()}" for p in _production_files()
              for n, line in enumerate(p.read_text().splitlines(), 1) if QUARANTINE_COPY.search(line)]
    assert not copies, "\n".join(copies)


# --- asset keys ------------------------------------------------------------------------------------

# Dagster calls (and keywords) that name an asset.
_KEY_CALLS = {"AssetKey", "asset", "multi_asset", "AssetSpec", "AssetCheckSpec", "AssetCheckKey", "AssetDep", "assets",
              "AssetRecordsFilter", "asset_materializations_for_node", "from_user_string", "materializations"}
_KEY_KEYWORDS = {"key", "deps", "asset", "asset_key", "selection"}
PIPELINE_PATHS = set(asset_keys.PIPELINE)


def _literal_paths(node: ast.AST) -> Iterator[tuple[str, ...]]:
    """Asset paths a literal argument spells: "a", "a/b", ["a", "b"], or lists of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield tuple(node.value.split("/"))
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        if node.elts and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield tuple(e.value for e in node.elts)
        for e in node.elts:
            yield from _literal_paths(e)


def literal_asset_keys(source: str) -> list[tuple[int, tuple[str, ...]]]:
    """(line, path) of every pipeline asset key written as a literal: in a Dagster call or
    keyword that names an asset, or as a "prefix/name" string anywhere in code (docstrings and
    comments are prose, not keys)."""
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            args = list(node.args) if name in _KEY_CALLS else []
            args += [k.value for k in node.keywords if k.arg in _KEY_KEYWORDS]
            found += [(node.lineno, p) for a in args for p in _literal_paths(a) if p in PIPELINE_PATHS]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and tuple(node.value.split("/")) in PIPELINE_PATHS and "/" in node.value):
            found.append((node.lineno, tuple(node.value.split("/"))))
    return sorted(set(found))


def test_the_asset_key_scan_finds_literal_keys() -> None:
    source = '''
import dagster as dg
@dg.asset(key=["kafka", "payments_curated"], deps=["curated_payments"])
def f(): """kafka/payments_curated in prose"""
A = dg.AssetKey("raw_payments")
B = {"postgres/curated_payments"}
C = result.asset_materializations_for_node("curated_payments")
T = "curated_payments"  # a table name, not a key
'''
    assert [line for line, _ in literal_asset_keys(source)] == [3, 3, 5, 6, 7]


def test_no_module_spells_a_pipeline_asset_key_but_the_asset_keys_module() -> None:
    here = Path(__file__).resolve()
    copies = [f"{_rel(p)}:{line}: {'/'.join(path)}"
              for p in _python_files("wallet_lake", "api", "bench", "wallet_lake_tests")
              if p.resolve() not in (here, CONTRACTS / "asset_keys.py")
              for line, path in literal_asset_keys(p.read_text())]
    assert not copies, "use wallet_lake.contracts.asset_keys:\n" + "\n".join(copies)


def test_the_pipeline_keys_are_in_flow_order_and_print_as_dagster_does() -> None:
    import dagster as dg

    assert asset_keys.PIPELINE == (
        asset_keys.RAW_PAYMENTS, asset_keys.CURATED_PAYMENTS, asset_keys.TOPIC_PAYMENTS_CURATED, asset_keys.TABLE_CURATED_PAYMENTS,
    )
    for path in asset_keys.PIPELINE:
        assert asset_keys.user_string(path) == dg.AssetKey(path).to_user_string()


# --- the report vocabulary -------------------------------------------------------------------------

VOCABULARY = {"UNKNOWN", "NOT_DECLINED", "DECLINED", "REFUNDED", "CHARGEBACK", "CAPTURED_STATUSES",
              *(n for n in reports.__all__ if n.startswith("LATENCY_"))}


def test_the_report_vocabulary_is_assigned_only_in_the_contracts() -> None:
    definitions = []
    for p in _production_files():
        for node in ast.walk(ast.parse(p.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            definitions += [f"{_rel(p)}:{node.lineno}: {t.id}" for t in targets if isinstance(t, ast.Name) and t.id in VOCABULARY]
    assert not definitions, "\n".join(definitions)


def test_the_lake_query_layer_and_the_api_reports_do_not_import_serving_for_the_vocabulary() -> None:
    code = "import sys, wallet_lake.lake.query\nprint(sorted(m for m in sys.modules if m.startswith('wallet_lake.serving')))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for p in _python_files("api", "wallet_lake"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "wallet_lake.serving.aggregates":
                assert not VOCABULARY & {a.name for a in node.names}, f"{_rel(p)}: import the vocabulary from wallet_lake.contracts.reports"


def test_the_report_relations_speak_the_vocabulary() -> None:
    from wallet_lake.contracts.report_relations import LATENCY_DAILY_SQL, STATUS_DAILY_SQL

    assert f"CASE WHEN status = '{reports.DECLINED}' THEN coalesce(nullif(decline_reason, ''), '{reports.UNKNOWN}')" in STATUS_DAILY_SQL
    assert f"ELSE '{reports.NOT_DECLINED}' END AS decline_reason" in STATUS_DAILY_SQL
    assert f"coalesce(nullif(payment_method, ''), '{reports.UNKNOWN}') AS payment_method" in LATENCY_DAILY_SQL
    assert reports.latency_width_sql("ms") in LATENCY_DAILY_SQL
