"""Local scratch folders named after the process that owns them, so that the next process removes
the folders of one killed before it could (SIGKILL, the out-of-memory killer, a host reboot).

Why: a curation keeps Spark's output on local disk until it publishes (`wl-curate-*`), the
curation worker warms up in a throwaway lake (`wl-worker-warmup-*`), and Spark keeps its shuffle
blocks and PySpark's files under `spark.local.dir`, and the driver JVM its temp files such as the
native libraries it unpacks (`wl-spark-*`, wallet_lake/spark.py). A process that is killed
leaves them behind, and a host that kills runs and restarts workers for months fills its disk.

A folder's name carries its owner: `<prefix><pid>.<start>-<random>`, where `start` is the
process's start time in clock ticks since boot (/proc/<pid>/stat), so that a pid reused by a
later process does not keep a dead one's folders. `sweep()` removes the folders whose owner no
longer runs, in this process's temp folder (TMPDIR); folders named otherwise (made before this
module, or by other tools) are left alone. A sweep never fails its caller: what it cannot read
or remove stays."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

CURATION_PREFIX = "wl-curate-"  # a curation's local output (lake/curation_run.py)
WARMUP_PREFIX = "wl-worker-warmup-"  # the curation worker's throwaway lake (lake/curation_worker.py)
SPARK_PREFIX = "wl-spark-"  # a process's spark.local.dir (spark.py)
API_SERVE_PREFIX = "wl-api-serve-"  # api.serve's workers' sockets behind the balancer (api/balancer.py)
PREFIXES = (CURATION_PREFIX, WARMUP_PREFIX, SPARK_PREFIX, API_SERVE_PREFIX)
_NAME = re.compile(r"(?P<prefix>" + "|".join(map(re.escape, PREFIXES)) + r")(?P<pid>\d+)\.(?P<start>\d+)(?:-.*)?")
_UNKNOWN = -1  # the process could not be looked at (another user's, under hidepid): it may run
_spark_dir: dict[int, str] = {}  # pid -> folder: a forked child makes its own


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when it does not run; _UNKNOWN
    when that cannot be told. 0 where there is no /proc (a pid then counts as its process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it was read
        if os.path.isdir("/proc/self"):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # another user's process
            pass
        return 0
    except OSError:
        return _UNKNOWN
    # Field 22 (starttime); the fields after the command name, which may hold spaces and ")".
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{_start_time(pid) or 0}"


def make(prefix: str, root: str | Path | None = None) -> Path:
    """A new scratch folder of this process (removing it is the caller's job; sweep() does it if
    the process dies first)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=root))


def spark_local_dir() -> str:
    """This process's spark.local.dir, made on the first call (0700, a name no one can guess and
    make first: Spark's shuffle blocks hold payment data). Spark removes what it put there when
    it stops normally; this process removes the folder at its exit; sweep() if it is killed."""
    pid = os.getpid()
    if pid not in _spark_dir:
        _spark_dir[pid] = str(make(SPARK_PREFIX))
        atexit.register(_remove_own, pid, _spark_dir[pid])
    return _spark_dir[pid]


def _remove_own(pid: int, path: str) -> None:
    if os.getpid() == pid:  # not in a forked child, whose parent may still use it
        shutil.rmtree(path, ignore_errors=True)


def orphans(root: str | Path | None = None) -> list[Path]:
    """The scratch folders under `root` (the temp folder by default) whose owner no longer runs."""
    root = Path(root or tempfile.gettempdir())
    found = []
    try:
        names = os.listdir(root)
    except OSError:
        return []
    for name in names:
        m = _NAME.fullmatch(name)
        if m is None:
            continue
        start = _start_time(int(m["pid"]))
        if start is None or (start not in (_UNKNOWN, int(m["start"])) and int(m["start"]) != 0):
            found.append(root / name)
    return sorted(found)


def sweep(root: str | Path | None = None, log=None) -> list[Path]:
    """Remove the scratch folders of processes that no longer run; the folders removed."""
    removed = []
    try:
        for path in orphans(root):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
    except Exception as e:  # noqa: BLE001 - a clean-up never fails a run: what it leaves, the next sweep tries again
        if log is not None:
            log.warning(f"scratch sweep stopped: {type(e).__name__}: {e}")
    if removed and log is not None:
        log.info(f"removed {len(removed)} scratch folder(s) that killed processes left: {', '.join(p.name for p in removed)}")
    return removed


def main(argv: list[str] | None = None) -> int:
    """`python -m wallet_lake.lake.scratch sweep [FOLDER]`: what stack/wallet-stack runs in the
    Dagster code server's temp folder, where no curation of the worker sweeps."""
    import argparse
    import logging

    p = argparse.ArgumentParser(prog="python -m wallet_lake.lake.scratch")
    p.add_argument("command", choices=["sweep"])
    p.add_argument("folder", nargs="?", help="the folder to sweep (default: the temp folder, TMPDIR)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[scratch] %(message)s")
    sweep(args.folder, log=logging.getLogger("scratch"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
