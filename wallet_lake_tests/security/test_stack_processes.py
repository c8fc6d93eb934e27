"""The stack's processes: the signals they take, and what the Dagster code server leaves behind.

Every service and app that `stack/wallet-stack` starts takes SIGINT and SIGTERM. A script's
background job starts with SIGINT ignored, and Dagster's code server maps SIGTERM to whatever
SIGINT does: it ignored SIGTERM, so every `apps-down` waited 30 s and then killed it.

The Dagster code server keeps its temp files under the stack's folder. `dagster code-server
start` serves the code through a child gRPC server, which binds a Unix socket it names in TMPDIR
at each start and removes only on a clean stop: 45 that killed servers left were found in /tmp
on this machine, one per start of the apps.
`stack/wallet-stack` gives the code server a TMPDIR of its own. While no code server runs (before
`apps` starts one, after `apps-down` stops it) it removes the sockets there that no process has
bound; at each of them, the scratch folders of killed processes there (each process that loads
the code location makes one, and no curation of the worker sweeps that folder). (Here because
it shares the session's apps with the secret scan: `running_apps`, conftest.py; the last test
stops and starts them again.)"""

from __future__ import annotations

import signal
import socket
import tempfile
from pathlib import Path

import pytest

from wallet_lake.lake import scratch
from wallet_lake_tests.security.conftest import APPS, run, stack_dir

pytestmark = [pytest.mark.integration]


def _children(pid: int) -> list[int]:
    """Every descendant of the process."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for task in Path(f"/proc/{p}/task").iterdir() for k in (task / "children").read_text().split()]
        except FileNotFoundError:  # it ended meanwhile
            continue
        found += kids
        todo += kids
    return found


def _grpc_children(pid: int) -> dict[int, Path]:
    """The code server's child gRPC servers (`dagster api grpc --socket PATH`) and their sockets."""
    out = {}
    for child in _children(pid):
        try:
            args = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        except FileNotFoundError:
            continue
        if "grpc" in args and "--socket" in args:
            out[child] = Path(args[args.index("--socket") + 1])
    return out


def _ignored_signals(pid: int) -> set[int]:
    """The signals the process ignores (SigIgn in /proc/<pid>/status: bit n-1 is signal n)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask >> (n - 1) & 1}
    raise AssertionError(f"no SigIgn line for pid {pid}")


# What `stack/wallet-stack up` starts with start_bg (Postgres is pg_ctl's: it sets its own signals).
SERVICES = ("moto", "kafka", "connect", "curation-worker")


def test_every_service_and_app_and_the_code_servers_grpc_child_take_sigint_and_sigterm(running_apps):
    """The processes `start_bg` starts, and the code server's gRPC child (which Dagster starts
    with the code server's own dispositions). Not every descendant: a run the code server
    launches has, for one, Python's multiprocessing resource tracker, which ignores both on
    purpose (it ends when its pipe closes), and PySpark's JVM ignores SIGINT on purpose."""
    pids = stack_dir() / "pids"
    processes = {}
    for name in (*SERVICES, *APPS):
        pid_file = pids / f"{name}.pid"
        if name in APPS:
            assert pid_file.is_file(), f"{name} is not running"
        elif not pid_file.is_file():
            continue
        processes[int(pid_file.read_text().strip())] = name
    code_server = next(p for p, name in processes.items() if name == "dagster-code-server")
    children = _grpc_children(code_server)
    assert children, "the code server runs no child gRPC server"
    processes.update({p: "dagster-code-server's gRPC child" for p in children})
    for p, name in processes.items():
        ignored = _ignored_signals(p) & {signal.SIGINT, signal.SIGTERM}
        assert not ignored, (f"{name} (pid {p}) ignores {sorted(signal.Signals(s).name for s in ignored)}: "
                             f"restart it with stack/wallet-stack (start_bg resets them)")


def _bound_socket_paths() -> set[str]:
    """The paths of the bound Unix sockets: what follows each line's seven fields (spaces kept)."""
    return {line.split(maxsplit=7)[7] for line in Path("/proc/net/unix").read_text().splitlines()[1:] if len(line.split(maxsplit=7)) == 8}


def _tmpdir_of(pid: int) -> str | None:
    """TMPDIR in the process's environment, and nothing else of it (which holds the secrets)."""
    for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0"):
        if entry.startswith("TMPDIR="):
            return entry.removeprefix("TMPDIR=")
    return None


def _check_grpc_servers(folder: Path) -> dict[int, Path]:
    pid = int((stack_dir() / "pids" / "dagster-code-server.pid").read_text().strip())
    servers = _grpc_children(pid)
    assert servers, f"the code server (pid {pid}) runs no child gRPC server"
    for child, sock in servers.items():
        assert sock.resolve().parent == folder, f"the code server's gRPC server binds {sock}, not a socket in {folder}"
        assert sock.is_socket() and str(sock) in _bound_socket_paths(), sock
        tmpdir = _tmpdir_of(child)
        assert Path(tmpdir or tempfile.gettempdir()).resolve() == folder, tmpdir
    return servers


def test_the_code_servers_grpc_socket_lies_in_its_own_temp_folder_and_what_dead_processes_left_there_is_removed(running_apps):
    """Sockets are removed only while no code server runs (apps-down), scratch folders of dead
    processes at any time (apps). The apps are stopped and started again here."""
    folder = (stack_dir() / "dagster-code-server" / "tmp").resolve()
    servers = _check_grpc_servers(folder)

    # What a killed or stopped server leaves: a socket file that nothing has bound any more.
    stale = folder / "tmpstale000"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    other = folder / "kept-not-a-socket"
    other.write_text("a run's file")
    # A killed process's scratch folder (no process has pid 999999999), and one of a live process.
    dead = folder / f"{scratch.SPARK_PREFIX}999999999.1-killed"
    dead.mkdir()
    live = scratch.make(scratch.SPARK_PREFIX, folder)
    try:
        assert stale.is_socket()
        run(["bash", "stack/wallet-stack", "apps"])  # the apps are up: this only checks them and sweeps
        assert not dead.exists(), "a killed process's scratch folder in the code server's temp folder was kept"
        assert live.is_dir(), "a live process's scratch folder was removed"
        assert stale.is_socket(), "a socket was removed while the code server runs"
        for sock in servers.values():
            assert sock.is_socket(), f"the live server's socket {sock} was removed"

        out = run(["bash", "stack/wallet-stack", "apps-down"])
        assert "still alive" not in out.stdout + out.stderr, f"an app did not stop on SIGTERM:\n{out.stdout}{out.stderr}"
        left = sorted(p.name for p in folder.iterdir() if p.is_socket())
        assert not left, f"sockets left in the code server's temp folder after apps-down: {left}"
        assert other.exists(), "a file that is not a socket was removed"
        assert live.is_dir(), "a live process's scratch folder was removed"
    finally:
        run(["bash", "stack/wallet-stack", "apps"])
        stale.unlink(missing_ok=True)
        other.unlink(missing_ok=True)
        for path in (dead, live):
            if path.exists():
                path.rmdir()
    assert set(_check_grpc_servers(folder).values()).isdisjoint(servers.values())  # a new server, a new socket
