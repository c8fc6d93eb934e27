"""More curation rules on hand-written lines: every kind of bad line the JSON grammar and the
field types allow, strict timestamps, whitespace, offsets across midnight, and the output schema
with nullability. One `curate` run (`edges`) holds every line below; expectations are by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wallet_lake.contracts.schema import spark_schema
from wallet_lake.transforms.curate import QUARANTINE_SCHEMA, RAW_INPUT_SCHEMA, REASONS, curate

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROCESSED_AT = datetime(2026, 11, 25, 3, 15, 42, tzinfo=UTC)
TAIL = '"merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'


def utc_us(*args) -> int:
    return (datetime(*args, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def line(pid: str, **fields) -> str:
    """A valid line of payment_id `pid` with some fields replaced by raw JSON text (None: left out)."""
    base = {"payment_id": f'"{pid}"', "merchant_id": '"m-1"', "amount_cents": "1250", "currency": '"USD"',
            "status": '"APPROVED"', "created_at": '"2026-11-24T10:00:00Z"'}
    base.update(fields)
    return "{" + ",".join(f'"{k}":{v}' for k, v in base.items() if v is not None) + "}"


LINES: list[str] = []


def reg(value: str) -> str:
    LINES.append(value)
    return value


# -- not one JSON object -----------------------------------------------------------------------
NOT_OBJECT = [pytest.param(reg(v), id=i) for i, v in (
    ("single_quotes", "{'payment_id':'x-sq','merchant_id':'m-1'}"),
    ("nan_token", '{"payment_id":"x-nan","risk_score":NaN,' + TAIL[1:]),
    ("infinity_token", '{"payment_id":"x-inf","risk_score":-Infinity,' + TAIL[1:]),
    ("trailing_comma", '{"payment_id":"x-comma",' + TAIL[:-1] + ",}"),
    ("object_then_text", '{"payment_id":"x-text",' + TAIL + " trailing"),
    ("object_then_string", '{"payment_id":"x-str",' + TAIL + '"more"'),
    ("object_then_number", '{"payment_id":"x-num",' + TAIL + "7"),
    ("object_then_array", '{"payment_id":"x-arr",' + TAIL + "[]"),
    ("nested_object_then_object", '{"payment_id":"x-nested","meta":{"a":{"b":1}},' + TAIL + '{"payment_id":"x-nested-2"}'),
    ("brace_in_string_then_brace", '{"payment_id":"x-}{","note":"}{",' + TAIL + "}"),
    ("object_then_text_ending_in_brace", '{"payment_id":"x-text-brace",' + TAIL + " x}"),
    ("non_ascii_object_then_brace", '{"payment_id":"x-\u00e9\u20ac-é€",' + TAIL + "}"),
    ("whitespace_only", " \t "),
    ("unquoted_key", '{payment_id:"x-unq",' + TAIL),
    ("comment", '{"payment_id":"x-comment", /* c */ ' + TAIL),
    ("raw_control_char_in_string", '{"payment_id":"x-\tctl",' + TAIL),
    ("leading_zero_number", '{"payment_id":"x-lz","amount_cents":0012,' + TAIL.replace('"amount_cents":1250,', "")),
)]

# -- valid despite looking odd -----------------------------------------------------------------
SURROUNDING_WS = reg(" \t" + '{"payment_id":"v-ws",' + TAIL + " \t")
NESTED_BRACES_IN_STRINGS = reg('{"payment_id":"v-braces","note":"} { ] [ \\" }",' + TAIL)
NESTED_UNKNOWN_OBJECT = reg('{"payment_id":"v-nested","meta":{"payment_id":7,"deep":[{"x":"}"}]},' + TAIL)
NUMERIC_STRING_ID = reg(line("12345"))
NON_ASCII_FLAT = reg(line("v-é€😀"))  # multi-byte UTF-8, the only '}' last
UNICODE_ESCAPED_ID = reg(line("\\u0070ay-esc").replace('"m-1"', '"m-esc"'))
DUPLICATE_KEY_LAST_WINS = reg('{"payment_id":"v-dup-key","status":"PENDING",' + TAIL)  # TAIL says APPROVED
STATUS_TAB_NEWLINE = reg(line("v-status-ws", status='"\\tdeclined\\n"'))
STATUS_TRAILING_CR = reg(line("v-status-cr", status='"approved\\r"'))
STATUS_LEADING_TAB = reg(line("v-status-lt", status='"\\tapproved"'))
STATUS_TRAILING_TAB = reg(line("v-status-tt", status='"approved\\t"'))
ID_WITH_LEADING_SPACE = reg(line(" v-lead", merchant_id='"\\tm-lead"'))  # not blank: kept as written
NINE_DIGIT_FRACTION = reg(line("v-ns", created_at='"2026-11-24T10:00:00.123456789Z"'))
OFFSET_PLUS_14 = reg(line("v-plus14", created_at='"2026-11-25T09:30:00+14:00"'))  # 2026-11-24T19:30Z
OFFSET_MINUS_12 = reg(line("v-minus12", created_at='"2026-11-24T13:00:00-12:00"'))  # 2026-11-25T01:00Z
NEGATIVE_ZERO_AMOUNT = reg(line("v-neg-zero", amount_cents="-0"))
RISK_INTEGER_ONE = reg(line("v-risk-int", risk_score="1"))

# -- wrong types and values --------------------------------------------------------------------
REJECTS = [pytest.param(reg(v), reasons, id=i) for i, v, reasons in (
    ("payment_id_true", line("x", payment_id="true"), ["payment_id_not_a_string"]),
    ("payment_id_object", line("x", payment_id='{"id":"p"}'), ["payment_id_not_a_string"]),
    ("payment_id_array", line("x", payment_id='["p"]'), ["payment_id_not_a_string"]),
    ("payment_id_float", line("x", payment_id="1.5e3"), ["payment_id_not_a_string"]),
    ("payment_id_huge_number", line("x", payment_id="1e400"), ["payment_id_not_a_string"]),
    ("payment_id_whitespace", line("x", payment_id='" \\t "'), ["payment_id_empty"]),
    ("merchant_id_newline_only", line("x-m-nl", merchant_id='"\\n"'), ["merchant_id_empty"]),
    ("merchant_id_carriage_return_then_tab", line("x-m-crt", merchant_id='"\\r\\t"'), ["merchant_id_empty"]),
    ("merchant_id_tab_only", line("x-m-tab", merchant_id='"\\t"'), ["merchant_id_empty"]),
    ("merchant_id_false", line("x-mfalse", merchant_id="false"), ["merchant_id_not_a_string"]),
    ("amount_exponent", line("x-exp", amount_cents="1e3"), ["amount_cents_not_an_integer"]),
    ("amount_integral_float", line("x-12.0", amount_cents="12.0"), ["amount_cents_not_an_integer"]),
    ("amount_bool", line("x-abool", amount_cents="true"), ["amount_cents_not_an_integer"]),
    ("amount_beyond_int64", line("x-big", amount_cents="9223372036854775808"), ["amount_cents_not_an_integer"]),
    ("amount_object", line("x-aobj", amount_cents='{"v":1}'), ["amount_cents_not_an_integer"]),
    ("currency_trailing_space", line("x-cur-sp", currency='"USD "'), ["currency_invalid"]),
    ("currency_leading_space", line("x-cur-lsp", currency='" usd"'), ["currency_invalid"]),
    ("currency_non_ascii", line("x-cur-u", currency='"ÜSD"'), ["currency_invalid"]),
    ("currency_number", line("x-cur-n", currency="840"), ["currency_invalid"]),
    ("status_number", line("x-st-n", status="1"), ["status_not_accepted"]),
    ("status_empty", line("x-st-e", status='""'), ["status_not_accepted"]),
    ("created_date_only", line("x-c-date", created_at='"2026-11-24"'), ["created_at_unparseable"]),
    ("created_space_separator", line("x-c-space", created_at='"2026-11-24 10:00:00Z"'), ["created_at_unparseable"]),
    ("created_no_seconds", line("x-c-nosec", created_at='"2026-11-24T10:00Z"'), ["created_at_unparseable"]),
    ("created_lower_case_t", line("x-c-lower", created_at='"2026-11-24t10:00:00z"'), ["created_at_unparseable"]),
    ("created_utc_word", line("x-c-utc", created_at='"2026-11-24T10:00:00 UTC"'), ["created_at_unparseable"]),
    ("created_region_zone", line("x-c-zone", created_at='"2026-11-24T10:00:00Europe/Paris"'), ["created_at_unparseable"]),
    ("created_feb_30", line("x-c-feb30", created_at='"2026-02-30T10:00:00Z"'), ["created_at_unparseable"]),
    ("created_year_zero", line("x-c-y0", created_at='"0000-01-01T00:00:00Z"'), ["created_at_unparseable"]),
    ("created_offset_19h", line("x-c-19h", created_at='"2026-11-24T10:00:00+19:00"'), ["created_at_unparseable"]),
    ("created_epoch_number", line("x-c-epoch", created_at="1795514400"), ["created_at_unparseable"]),
    ("created_trailing_newline", line("x-c-nl", created_at='"2026-11-24T10:00:00Z\\n"'), ["created_at_unparseable"]),
    ("authorized_empty", line("x-a-empty", authorized_at='""'), ["authorized_at_unparseable"]),
    ("completed_number", line("x-comp-n", completed_at="0"), ["completed_at_unparseable"]),
    ("risk_bool", line("x-r-bool", risk_score="true"), ["risk_score_not_a_number"]),
    ("risk_string_infinity_minus", line("x-r-minf", risk_score='"-Infinity"'), ["risk_score_not_a_number"]),
    ("risk_huge", line("x-r-huge", risk_score="1e400"), ["risk_score_out_of_range"]),
    ("risk_array", line("x-r-arr", risk_score="[0.5]"), ["risk_score_not_a_number"]),
)]


@pytest.fixture(scope="module")
def edges(spark):
    assert len(LINES) == len(set(LINES))
    raw = spark.createDataFrame([("edges.ndjson", i + 1, v) for i, v in enumerate(LINES)], RAW_INPUT_SCHEMA)
    result = curate(raw, processed_at=PROCESSED_AT)
    ts = lambda df: df.select([F.unix_micros(c).alias(c) if t == "timestamp" else F.col(c) for c, t in df.dtypes])  # noqa: E731
    return {
        "curated": {r["payment_id"]: r.asDict() for r in ts(result.curated).collect()},
        "quarantine": {r["raw_line"]: r.asDict() for r in ts(result.quarantine).collect()},
        "curated_schema": result.curated.schema,
        "quarantine_schema": result.quarantine.schema,
        "rows": len(LINES),
    }


@pytest.mark.parametrize("value", NOT_OBJECT)
def test_anything_but_exactly_one_strict_json_object_is_not_a_json_object(edges, value):
    assert edges["quarantine"][value]["reasons"] == ["not_a_json_object"]


@pytest.mark.parametrize(("value", "reasons"), REJECTS)
def test_wrongly_typed_or_valued_fields_get_their_reason(edges, value, reasons):
    assert edges["quarantine"][value]["reasons"] == reasons


def test_whitespace_around_the_object_and_braces_inside_strings_are_fine(edges):
    for value, pid in ((SURROUNDING_WS, "v-ws"), (NESTED_BRACES_IN_STRINGS, "v-braces"), (NESTED_UNKNOWN_OBJECT, "v-nested")):
        assert value not in edges["quarantine"], edges["quarantine"].get(value)
        assert edges["curated"][pid]["amount_cents"] == 1250


def test_a_flat_object_with_multi_byte_characters_is_valid(edges):
    assert NON_ASCII_FLAT not in edges["quarantine"], edges["quarantine"].get(NON_ASCII_FLAT)
    assert edges["curated"]["v-é€😀"]["amount_cents"] == 1250


def test_a_numeric_looking_string_id_is_a_string(edges):
    assert edges["curated"]["12345"]["merchant_id"] == "m-1"


def test_escaped_characters_are_decoded(edges):
    assert edges["curated"]["pay-esc"]["merchant_id"] == "m-esc"


def test_a_repeated_key_takes_its_last_value(edges):
    assert edges["curated"]["v-dup-key"]["status"] == "APPROVED"


def test_status_is_trimmed_of_json_whitespace_and_upper_cased(edges):
    assert edges["curated"]["v-status-ws"]["status"] == "DECLINED"
    assert edges["curated"]["v-status-cr"]["status"] == "APPROVED"
    assert edges["curated"]["v-status-lt"]["status"] == "APPROVED"
    assert edges["curated"]["v-status-tt"]["status"] == "APPROVED"


def test_ids_that_begin_with_whitespace_but_hold_more_are_kept_as_written(edges):
    assert edges["curated"][" v-lead"]["merchant_id"] == "\tm-lead"


def test_fractions_beyond_microseconds_are_truncated(edges):
    assert edges["curated"]["v-ns"]["created_at"] == utc_us(2026, 11, 24, 10, 0, 0, 123456)


def test_extreme_offsets_cross_midnight_in_both_directions(edges):
    plus, minus = edges["curated"]["v-plus14"], edges["curated"]["v-minus12"]
    assert (plus["created_at"], plus["dt"], plus["hour"]) == (utc_us(2026, 11, 24, 19, 30), date(2026, 11, 24), 19)
    assert (minus["created_at"], minus["dt"], minus["hour"]) == (utc_us(2026, 11, 25, 1), date(2026, 11, 25), 1)


def test_negative_zero_amount_and_integer_risk_score_are_valid(edges):
    assert edges["curated"]["v-neg-zero"]["amount_cents"] == 0
    assert edges["curated"]["v-risk-int"]["risk_score"] == 1.0


def test_every_line_is_curated_or_quarantined_here(edges):
    # No payment_id repeats among the valid lines, so no duplicates: rows = curated + quarantined.
    assert edges["rows"] == len(edges["curated"]) + len(edges["quarantine"])


def test_every_reason_code_is_one_of_the_documented_reasons(edges):
    seen = {r for q in edges["quarantine"].values() for r in q["reasons"]}
    assert seen <= set(REASONS)


def test_curated_schema_equals_the_contract_including_nullability(edges):
    assert edges["curated_schema"] == spark_schema()


def test_quarantine_schema_equals_its_declaration_including_nullability(edges):
    got = [(f.name, f.dataType, f.nullable) for f in edges["quarantine_schema"].fields]
    want = [(f.name, f.dataType, f.nullable) for f in QUARANTINE_SCHEMA.fields]
    assert [(n, t) for n, t, _ in got] == [(n, t) for n, t, _ in want]
    assert dict((n, nl) for n, _, nl in got)["reasons"] is False
    assert isinstance(edges["quarantine_schema"]["reasons"].dataType, T.ArrayType)
