"""The broker's and the Connect worker's JVMs keep their temp files under the stack's folder, not
in the machine's temp folder: lz4-java unpacks its native library there at each start (the
publisher's batches are lz4), and a JVM that is killed never removes it. `stack/wallet-stack`
empties each service's temp folder when it starts the service, so one start leaves one copy."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from wallet_lake_tests.integration.sink_support import (
    ROOT, _pid_file, curated_row, ensure_sink_running, publish_rows, rows_prefix_fixture, wait_for_shared_sink,
)

pytestmark = pytest.mark.integration
TMPDIR_OPTION = "-Djava.io.tmpdir="

prefix = rows_prefix_fixture("jvm-tmp")


def _mapped_files(pid: int) -> set[Path]:
    """The files a process maps (its loaded native libraries among them), deleted ones too."""
    files = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            files.add(Path(fields[5].removesuffix(" (deleted)")))
    return files


def test_the_broker_and_the_connect_worker_unpack_native_libraries_under_the_stack_folder(stack_resources, prefix):
    res = stack_resources
    ensure_sink_running(res)
    # lz4 batches through both JVMs: the broker validates them, the worker's consumer reads them.
    result = publish_rows(res["kafka"], [curated_row(f"{prefix}{i}", datetime(2026, 11, 25, 12, i, tzinfo=timezone.utc)) for i in range(3)])
    wait_for_shared_sink(res, result.end_offsets)

    stack = Path(os.environ.get("WL_STACK_DIR", ROOT / ".stack")).resolve()
    machine_tmp = Path(tempfile.gettempdir()).resolve()
    for service in ("kafka", "connect"):
        pid = int(_pid_file(service).read_text().strip())
        want = stack / service / "tmp"
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        given = [Path(a.removeprefix(TMPDIR_OPTION)).resolve() for a in args if a.startswith(TMPDIR_OPTION)]
        assert given == [want], f"{service} runs with java.io.tmpdir {given}, not {want}: restart the stack"
        mapped = {p.resolve() for p in _mapped_files(pid)}
        lz4 = [p for p in mapped if p.name.startswith("liblz4")]
        assert lz4, f"{service} has not loaded lz4-java's native library after lz4 batches"
        assert all(p.parent == want for p in lz4), (service, lz4)
        assert not [p for p in mapped if p.parent == machine_tmp], (service, sorted(p for p in mapped if p.parent == machine_tmp))
        # Emptied at the service's start: no copy of an earlier start (a SIGKILLed one's) beside it.
        assert {p.resolve() for p in want.glob("liblz4*.so")} == set(lz4), (service, sorted(want.iterdir()))
