"""The API benchmarks' request mix is defined once (bench/api_load.py's random_path): wrk replays
a sample of it through bench/api_mix.lua, vegeta through bench/api_open_loop.py's targets. Pure;
nothing is run against the API."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import api_load
    import api_open_loop

    return api_load, api_open_loop


def test_every_path_of_the_mix_stays_inside_the_loaded_data(bench):
    load, _ = bench
    rng = random.Random(7)
    last_day = (load.START.toordinal() + load.DAYS - 1)
    seen = set()
    for _ in range(2000):
        url = urlsplit(load.random_path(rng, 0.1))
        report = url.path.removeprefix("/reports/")
        assert report in load.REPORTS
        seen.add(report)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if "merchant" in q:
            assert report != "latency" and 1 <= int(q["merchant"].removeprefix("m_")) <= load.MERCHANTS
        if report == "daily-recon":
            assert load.START.toordinal() <= _day(q["date"]) <= last_day
        else:
            first, last = _day(q["from"]), _day(q["to"])
            assert load.START.toordinal() <= first <= last <= last_day and last - first < 31
        if "payment_method" in q:
            assert report == "latency" and q["payment_method"] in load.METHODS
    assert seen == set(load.REPORTS)


def _day(text: str) -> int:
    from datetime import date

    return date.fromisoformat(text).toordinal()


def test_wrk_and_vegeta_replay_the_same_mix(bench, tmp_path):
    load, open_loop = bench
    load.write_mix(tmp_path / "mix", 50, seed=3, all_share=0.1)
    open_loop.write_targets(tmp_path / "targets", 8000, "key-not-a-secret", 50, seed=3, all_share=0.1)
    wrk_paths = (tmp_path / "mix").read_text().splitlines()
    vegeta_paths = [urlsplit(json.loads(line)["url"]) for line in (tmp_path / "targets").read_text().splitlines()]
    assert wrk_paths == [f"{u.path}?{u.query}" for u in vegeta_paths]


def test_the_lua_script_holds_no_copy_of_the_mix(bench):
    load, _ = bench
    lua = (BENCH / "api_mix.lua").read_text()
    code = "\n".join(line for line in lua.splitlines() if not line.lstrip().startswith("--"))
    assert not [name for name in (*(f'"{n}"' for n in (*load.REPORTS, *load.METHODS)), "merchant", "from=") if name in code]
    assert re.search(r"io\.lines\(args\[2\]\)", code)  # the sample api_load.py writes
