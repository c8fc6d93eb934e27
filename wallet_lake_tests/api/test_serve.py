"""api/serve.py, the API in several worker processes: each worker listens on its own
SO_REUSEPORT socket, so connections opened together spread over the workers; a worker that
dies (SIGKILL) is replaced; SIGTERM stops them all, and so does the supervisor's own SIGKILL;
a worker that cannot start stops the parent.
Real processes on a loopback port; sockets are read from /proc."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from ..polling import deadline_poll
from wallet_lake_tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _tcp_sockets(port: int) -> dict[int, str]:
    """inode -> state ("0A" listening, "01" established) of every IPv4 socket on the local port."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found[int(fields[9])] = fields[3]
    return found


def _owners(pids: list[int], inodes: set[int]) -> dict[int, int]:
    """inode -> the pid (of `pids`) whose file descriptors hold it."""
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    owners[inode] = pid
    return owners


def _workers(parent: int) -> list[int]:
    """The parent's worker processes (multiprocessing's spawned children, not its resource tracker)."""
    workers = []
    for pid in _children(parent):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


@contextmanager
def served(tmp_path: Path, *extra: str, workers: int = 2):
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.serve", "--workers", str(workers), "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning", *extra],
                                cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, port, log
    finally:
        # Children first: once the parent is gone they are no longer its children to find.
        for pid in _children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def _listeners(parent: int, port: int) -> dict[int, int]:
    """worker pid -> its listening sockets on the port."""
    sockets = _tcp_sockets(port)
    listening = {inode for inode, state in sockets.items() if state == "0A"}
    return Counter(_owners(_workers(parent), listening).values())


def _running(pid: int) -> bool:
    """Alive and not a zombie (a child of this test process is reaped only when waited for)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_each_worker_listens_on_its_own_socket_and_connections_spread(tmp_path):
    with served(tmp_path) as (proc, port, log):
        deadline_poll(lambda: len(_listeners(proc.pid, port)) == 2 and _ready(port), timeout=60, what=f"two workers listening ({log})")
        workers = _workers(proc.pid)
        # One listening socket per worker, each its own (uvicorn --workers shares one).
        assert _listeners(proc.pid, port) == {pid: 1 for pid in workers}
        # 64 keep-alive connections opened at once, as a load driver or a proxy's pool does.
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(64)]
        for c in connections:
            c.request("GET", "/healthz")
            assert c.getresponse().read() == b'{"status":"ok"}'
        established = {inode for inode, state in _tcp_sockets(port).items() if state == "01"}
        per_worker = Counter(_owners(workers, established).values())
        for c in connections:
            c.close()
        # Both workers hold some: all 64 on one worker has odds of 2^-63 under the kernel's hash.
        assert set(per_worker) == set(workers) and sum(per_worker.values()) == 64, per_worker


def test_a_killed_worker_is_replaced_and_sigterm_stops_every_process(tmp_path):
    with served(tmp_path) as (proc, port, log):
        deadline_poll(lambda: len(_listeners(proc.pid, port)) == 2 and _ready(port), timeout=60, what=f"two workers listening ({log})")
        first = _workers(proc.pid)
        os.kill(first[0], signal.SIGKILL)
        replaced = deadline_poll(lambda: (w := _workers(proc.pid)) and len(w) == 2 and first[0] not in w and w,
                                 timeout=60, what="the killed worker's replacement")
        deadline_poll(lambda: set(_listeners(proc.pid, port)) == set(replaced), timeout=60, what="the replacement listening")
        assert first[1] in replaced
        assert _ready(port)
        assert b"worker exited; starting another" in log.read_bytes()

        everyone = [proc.pid, *_children(proc.pid)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        deadline_poll(lambda: not any(_running(pid) for pid in everyone), timeout=60, what="every process to exit")
        assert not _ready(port)


def test_workers_stop_when_the_supervisor_is_killed(tmp_path):
    with served(tmp_path) as (proc, port, log):
        deadline_poll(lambda: len(_listeners(proc.pid, port)) == 2 and _ready(port), timeout=60,
                      what=f"two workers listening ({log})")
        workers = _workers(proc.pid)
        proc.kill()  # SIGKILL: the supervisor cannot stop them itself
        proc.wait()
        deadline_poll(lambda: not any(_running(pid) for pid in workers), timeout=60,
                      what="the orphaned workers to stop")
        assert not _ready(port)


def test_a_worker_that_cannot_start_stops_the_parent(tmp_path):
    # The port is taken by a socket without SO_REUSEPORT: no worker can listen.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "serve.log"
        with open(log, "wb") as out:
            done = subprocess.run([sys.executable, "-m", "api.serve", "--workers", "2", "--port", str(port)],
                                  cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, timeout=120)
    assert done.returncode == 1
    text = log.read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in text and "worker failed before serving; stopping" in text


def test_another_app_from_app_dir(tmp_path):
    # The benchmarks serve bench/api_lean_app.py so (--app-dir bench), in place of the API.
    (tmp_path / "tiny_app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'http':\n"
        "        await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-length', b'4')]})\n"
        "        await send({'type': 'http.response.body', 'body': b'tiny'})\n")
    with served(tmp_path, "tiny_app:app", "--app-dir", str(tmp_path), workers=1) as (proc, port, log):
        def answered():
            try:
                return requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except requests.ConnectionError:
                return None
        assert deadline_poll(answered, timeout=60, what=f"the app from --app-dir ({log})") == "tiny"


def test_workers_must_be_positive():
    done = subprocess.run([sys.executable, "-m", "api.serve", "--workers", "0"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--workers must be at least 1" in done.stderr


@pytest.fixture(autouse=True)
def _linux_only():
    if not Path("/proc/net/tcp").exists():
        pytest.fail("these checks read sockets from /proc (Linux)")
