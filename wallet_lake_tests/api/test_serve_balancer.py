"""api/serve.py --balance-requests: HAProxy (api/balancer.py) in front of the workers. Each request,
not each connection, goes to a worker, at most N at once in each; the client's address is the one
HAProxy saw, whatever X-Forwarded-For the client sent; a killed worker costs no GET an error; a
killed HAProxy is replaced; SIGTERM and the supervisor's SIGKILL stop everything.
Real processes: the machine's HAProxy (scripts/install-balancer.sh), a small app in the workers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from api import balancer
from wallet_lake.lake import scratch
from ..polling import deadline_poll
from .test_serve import ROOT, _children, _running, _workers, served

# Answers with its worker's pid, the client address it was given, and how many requests this
# worker had in progress when the request came in (itself included); /slow?ms=N waits N ms.
WHO_APP = """
import asyncio, json, os
in_progress = 0
async def app(scope, receive, send):
    global in_progress
    if scope['type'] != 'http':
        return
    in_progress += 1
    seen = in_progress
    if os.environ.get('WHO_APP_ARRIVALS'):  # one line per request taken, for a test to wait on
        with open(os.environ['WHO_APP_ARRIVALS'], 'a') as f:
            f.write(f"{os.getpid()}\\n")
    try:
        if scope['path'] == '/slow':
            await asyncio.sleep(int(scope['query_string'].decode().split('=')[1]) / 1000)
        body = json.dumps({'pid': os.getpid(), 'client': scope['client'][0] if scope['client'] else None,
                           'in_progress': seen}).encode()
    finally:
        in_progress -= 1
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode())]})
    await send({'type': 'http.response.body', 'body': body})
"""


@pytest.fixture(autouse=True)
def _needs_haproxy():
    balancer.executable()  # a clear error when it is missing: scripts/test installs it
    yield
    # `served` ends with the supervisor's SIGKILL, which leaves its folder (the next supervisor
    # would remove it): leave the machine as found.
    scratch.sweep()


def _who_app(tmp_path: Path) -> list[str]:
    (tmp_path / "who_app.py").write_text(WHO_APP)
    return ["who_app:app", "--app-dir", str(tmp_path)]


def _get(port: int, path: str = "/", headers: dict | None = None, conn: http.client.HTTPConnection | None = None) -> tuple[int, dict]:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, (json.loads(body) if r.status == 200 else {})


def _answers(port: int) -> bool:
    try:
        return _get(port)[0] == 200
    except OSError:
        return False


def _balancers(parent: int) -> list[int]:
    found = []
    for pid in _children(parent):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
                found.append(pid)
        except OSError:  # gone since it was listed
            continue
    return found


def _socket_folder(parent: int) -> Path:
    """The workers' folder, where the balancer's configuration lies (its command line names it)."""
    (config,) = [a for a in Path(f"/proc/{_balancers(parent)[0]}/cmdline").read_bytes().split(b"\0") if a.endswith(b".cfg")]
    return Path(config.decode()).parent


def _up(proc, port: int, log: Path, workers: int = 2) -> None:
    deadline_poll(lambda: len(_workers(proc.pid)) == workers and len(_balancers(proc.pid)) == 1 and _answers(port),
                  timeout=60, what=f"the workers behind the balancer ({log})")


def test_a_killed_supervisors_socket_folder_is_removed_by_the_next_one(tmp_path):
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "1") as (proc, port, log):
        _up(proc, port, log)
        left = _socket_folder(proc.pid)
        proc.kill()
        proc.wait()
    assert left.name.startswith(f"{scratch.API_SERVE_PREFIX}{proc.pid}.") and left.exists()
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "1") as (proc, port, log):
        _up(proc, port, log)
        assert not left.exists()


def test_requests_of_one_connection_go_to_every_worker_at_most_n_at_once_with_the_clients_address(tmp_path):
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "1") as (proc, port, log):
        _up(proc, port, log)
        workers = set(_workers(proc.pid))
        # One keep-alive connection, one request after another: least busy first, ties in turn
        # (once the balancer's check has seen both workers listen).
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline_poll(lambda: {_get(port, conn=conn)[1]["pid"] for _ in range(4)} == workers, timeout=30,
                      what="requests of one connection answered by both workers")
        conn.close()
        # Eight requests at once on eight connections: never more than one in a worker, the rest queued.
        answers: list[tuple[int, dict]] = []
        threads = [threading.Thread(target=lambda: answers.append(_get(port, "/slow?ms=300"))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [status for status, _ in answers] == [200] * 8
        assert {a["in_progress"] for _, a in answers} == {1}
        assert {a["pid"] for _, a in answers} == workers
        # The address the balancer saw; a client's own X-Forwarded-For is dropped, not trusted.
        assert _get(port)[1]["client"] == "127.0.0.1"
        assert _get(port, headers={"X-Forwarded-For": "203.0.113.9"})[1]["client"] == "127.0.0.1"
        # Only the balancer reaches a worker: their sockets lie in a folder of mode 0700.
        assert _socket_folder(proc.pid).stat().st_mode & 0o777 == 0o700


def test_a_killed_worker_costs_no_get_an_error_and_is_replaced(tmp_path):
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "2") as (proc, port, log):
        _up(proc, port, log)
        first = _workers(proc.pid)
        statuses: list[int] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                while not stop.is_set():
                    statuses.append(_get(port, "/slow?ms=50", conn=conn)[0])
            except BaseException as exc:  # a reset or closed connection is a lost request too
                failures.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        deadline_poll(lambda: len(statuses) >= 20, timeout=60, what="requests answered before the kill")
        os.kill(first[0], signal.SIGKILL)  # with requests in progress in it
        replaced = deadline_poll(lambda: (w := _workers(proc.pid)) and len(w) == 2 and first[0] not in w and w,
                                 timeout=60, what="the killed worker's replacement")
        # The replacement serves: requests reach it again.
        deadline_poll(lambda: any(_get(port)[1]["pid"] not in first for _ in range(4)), timeout=60,
                      what="a request answered by the replacement")
        stop.set()
        for t in threads:
            t.join()
        assert first[1] in replaced
        assert failures == []
        assert statuses and set(statuses) == {200}, f"{statuses.count(200)} of {len(statuses)} answered 200"


def test_a_killed_balancer_is_replaced_and_sigterm_stops_every_process_and_removes_the_sockets(tmp_path):
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "2") as (proc, port, log):
        _up(proc, port, log)
        (killed,) = _balancers(proc.pid)
        os.kill(killed, signal.SIGKILL)
        deadline_poll(lambda: (b := _balancers(proc.pid)) and b != [killed] and _answers(port), timeout=60,
                      what="another balancer answering on the same port")
        assert b"the balancer exited; starting another" in log.read_bytes()

        folder = _socket_folder(proc.pid)
        everyone = [proc.pid, *_children(proc.pid)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        deadline_poll(lambda: not any(_running(pid) for pid in everyone), timeout=60, what="every process to exit")
        assert not _answers(port)
        assert not folder.exists()


def test_sigterm_answers_the_requests_in_progress_and_those_queued_in_the_balancer(tmp_path, monkeypatch):
    arrivals = tmp_path / "arrivals"
    monkeypatch.setenv("WHO_APP_ARRIVALS", str(arrivals))
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "1") as (proc, port, log):
        _up(proc, port, log)
        deadline_poll(lambda: {_get(port)[1]["pid"] for _ in range(4)} == set(_workers(proc.pid)), timeout=30,
                      what="both workers taken back by the balancer")
        arrivals.write_text("")
        answers: list[int] = []
        threads = [threading.Thread(target=lambda: answers.append(_get(port, "/slow?ms=2000")[0])) for _ in range(4)]
        for t in threads:
            t.start()
        # One request in each worker (at most one each): the other two wait in HAProxy's queue.
        deadline_poll(lambda: len(arrivals.read_text().split()) == 2, timeout=30, what="a request in each worker")
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        assert proc.wait(timeout=60) == 0
        assert answers == [200] * 4
        assert len(arrivals.read_text().split()) == 4


def test_the_balancer_and_workers_stop_when_the_supervisor_is_killed(tmp_path):
    with served(tmp_path, *_who_app(tmp_path), "--balance-requests", "2") as (proc, port, log):
        _up(proc, port, log)
        children = [*_workers(proc.pid), *_balancers(proc.pid)]
        proc.kill()  # SIGKILL: the kernel signals them (PR_SET_PDEATHSIG)
        proc.wait()
        deadline_poll(lambda: not any(_running(pid) for pid in children), timeout=60, what="the orphans to stop")
        assert not _answers(port)


@pytest.mark.parametrize("holder_reuses_the_port", [False, True])
def test_a_port_in_use_is_the_supervisors_clear_error(tmp_path, holder_reuses_the_port):
    # Even a holder with SO_REUSEPORT: the balancer's socket never shares its port.
    with socket.socket() as taken:
        if holder_reuses_the_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "api.serve", "--workers", "2", "--port", str(port), "--balance-requests", "2"],
                              cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Address already in use" in done.stderr


def test_the_configuration_holds_n_requests_per_worker_and_refuses_zero():
    text = balancer.config(7, ["/a/worker-0.sock", "/a/worker-1.sock"], 3, maxconn=500)
    assert "bind fd@7" in text and "balance leastconn" in text and "  maxconn 500\n" in text
    assert "retries 3\n" in text and "del-header X-Forwarded-Proto" in text
    assert text.count("maxconn 3") == 2 and "server worker-1 unix@/a/worker-1.sock maxconn 3" in text
    with pytest.raises(ValueError):
        balancer.config(7, ["/a/worker-0.sock"], 0)
