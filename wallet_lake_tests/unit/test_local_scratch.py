"""lake/scratch.py: scratch folders carry their owner, and a sweep removes exactly those whose
owner no longer runs (real processes, SIGKILLed; a pid that now names another process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from wallet_lake.lake import scratch

ROOT = Path(__file__).resolve().parents[2]


def _child_with_folder(root: Path, prefix: str) -> tuple[subprocess.Popen, Path]:
    """A live process that made a scratch folder (with a file in it) under `root`."""
    code = ("import sys; from wallet_lake.lake import scratch; d = scratch.make(sys.argv[1], sys.argv[2]);"
            " (d / 'part-0.parquet').write_bytes(b'x' * 1000); print(d, flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, prefix, str(root)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_a_folder_outlives_its_killed_owner_until_a_sweep(tmp_path):
    proc, folder = _child_with_folder(tmp_path, scratch.CURATION_PREFIX)
    assert folder.name.startswith(f"{scratch.CURATION_PREFIX}{proc.pid}.")
    assert scratch.orphans(tmp_path) == []  # its owner runs
    assert scratch.sweep(tmp_path) == [] and (folder / "part-0.parquet").exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert folder.exists()  # nothing removed it: the case the sweep is for
    assert scratch.sweep(tmp_path) == [folder]
    assert not folder.exists()


def test_a_sweep_keeps_live_owners_and_foreign_names(tmp_path):
    live, live_folder = _child_with_folder(tmp_path, scratch.WARMUP_PREFIX)
    try:
        mine = scratch.make(scratch.SPARK_PREFIX, tmp_path)
        foreign = [tmp_path / "wl-curate-abc123", tmp_path / "spark-1234", tmp_path / "wl-iamrec-x.jsonl",
                   tmp_path / f"wl-curates-{os.getpid()}.1"]
        for f in foreign[:2] + foreign[3:]:
            f.mkdir()
        foreign[2].write_text("{}")
        # The pid of a running process but another start time: the pid was reused, its owner is gone.
        reused = tmp_path / f"{scratch.CURATION_PREFIX}{os.getpid()}.1-abc"
        reused.mkdir()
        assert scratch.sweep(tmp_path) == [reused]
        assert live_folder.exists() and mine.exists() and all(f.exists() for f in foreign)
    finally:
        live.stdin.close()
        live.wait()
    assert scratch.sweep(tmp_path) == [live_folder]  # its owner ended without removing it


def test_spark_local_dir_is_this_process_s_private_folder():
    path = Path(scratch.spark_local_dir())
    assert path.name.startswith(f"{scratch.SPARK_PREFIX}{scratch.owner_tag()}-")
    assert path.parent == Path(tempfile.gettempdir())
    assert path.is_dir() and path.stat().st_mode & 0o777 == 0o700  # Spark's blocks hold payment data
    assert scratch.spark_local_dir() == str(path)  # one per process
    assert path not in scratch.orphans()


def test_a_sweep_keeps_folders_whose_owner_cannot_be_looked_at(tmp_path, monkeypatch):
    """/proc unreadable for a pid (another user's process under hidepid): its folder may be in
    use, so it stays; a pid gone as its stat is read counts as gone."""
    kept = tmp_path / f"{scratch.CURATION_PREFIX}1234567.42-a"
    kept.mkdir()
    monkeypatch.setattr(scratch, "_start_time", lambda pid: scratch._UNKNOWN)
    assert scratch.sweep(tmp_path) == [] and kept.exists()
    monkeypatch.setattr(scratch, "_start_time", lambda pid: None)
    assert scratch.sweep(tmp_path) == [kept]


def test_a_sweep_never_fails_its_caller(tmp_path, monkeypatch):
    (tmp_path / f"{scratch.CURATION_PREFIX}1234567.42-a").mkdir()

    def broken(pid):
        raise ValueError("unreadable stat")

    monkeypatch.setattr(scratch, "_start_time", broken)
    warnings = []
    log = type("Log", (), {"warning": lambda self, m: warnings.append(m), "info": lambda self, m: None})()
    assert scratch.sweep(tmp_path, log=log) == []
    assert warnings == ["scratch sweep stopped: ValueError: unreadable stat"]
