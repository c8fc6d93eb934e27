"""The API in several worker processes, each listening on its own SO_REUSEPORT socket:

    python -m api.serve --workers 2 --host 127.0.0.1 --port 8000

Why not `uvicorn --workers N`: its workers share one listening socket, and the worker that wakes
first accepts every connection then waiting (uvloop accepts in a loop). Keep-alive connections
opened together (a proxy's pool, a load driver's) then stay on one worker for their life: 64
opened at once landed 46/18, 36/28 and 29/35 on two workers, and 57/7 when opened 5 ms apart
(session 25). Behind the busier worker, requests queue while the other has CPU to spare. With a
socket per worker the kernel picks a socket for each new connection by a hash of its addresses,
whatever the workers are doing at that moment.

The parent only supervises. It starts the workers and starts another when one dies (SIGKILL
included). It stops when a worker fails before serving (exit status 3, uvicorn's startup
failure: the app or its settings are broken, and would fail again the same way). On SIGTERM or
SIGINT it stops every worker (each drains its requests, as uvicorn does) and exits; killed
outright (SIGKILL), its workers get SIGTERM from the kernel and stop the same way.
Metrics of several workers need PROMETHEUS_MULTIPROC_DIR (api/metrics.py), as with uvicorn.

With --balance-requests N, HAProxy (api/balancer.py) listens on the port instead and hands each
request to the least busy worker, at most N in each at once, the rest waiting in one queue; the
workers listen on Unix sockets only it reaches. The supervisor runs HAProxy as it runs a worker:
restarted when it dies, stopped with the rest."""

from __future__ import annotations

import argparse
import ctypes
import logging
import multiprocessing
import os
import signal
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from api import balancer
from api.logs import configure_logging

log = structlog.get_logger(logger_name="api.serve")

# How long workers get to drain on SIGTERM before they are killed (uvicorn's own default
# graceful timeout is unbounded; a supervisor that never exits cannot be restarted).
STOP_TIMEOUT_S = 30
# A balancer that exits twice in a row within this long of its start cannot run (a broken
# installation): the supervisor stops rather than start it forever.
BALANCER_SETTLE_S = 5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def listening_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A socket bound with SO_REUSEPORT: every worker binds its own on the same port. The
    balancer's is bound without it (reuse_port=False): no other process (a second supervisor, a
    stale HAProxy) can bind the port beside it and take a share of its connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def unix_listening_socket(path: str) -> socket.socket:
    """A worker's Unix socket behind the balancer; the one a killed worker left is replaced."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    return sock


def signal_on_parent_death() -> None:
    """SIGTERM this process when its parent dies (Linux's PR_SET_PDEATHSIG). The C library is
    the process's own (no library search, which runs ldconfig: this also runs between fork and
    exec, for HAProxy)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def balancer_child(parent: int) -> Callable[[], None]:
    """What HAProxy's child runs before exec: the parent-death signal, then exit at once if the
    supervisor died before it was set (an orphan HAProxy would keep the port)."""
    def setup() -> None:
        signal_on_parent_death()
        if os.getppid() != parent:
            os._exit(0)
    return setup


def stop_with_parent(parent: int) -> None:
    """SIGTERM this process when its parent dies, so a supervisor killed by SIGKILL leaves no
    worker holding the port; exit now if it is already gone."""
    signal_on_parent_death()
    if os.getppid() != parent:
        sys.exit(0)


def serve_worker(app: str, host: str, port: int, options: dict, app_dir: str, parent: int, uds: str = "") -> None:
    """One worker process: its own socket (a Unix socket behind the balancer), then uvicorn's
    server on it (uvicorn's signal handling, lifespan and graceful shutdown unchanged)."""
    stop_with_parent(parent)
    if app_dir:
        sys.path.insert(0, app_dir)  # as uvicorn's --app-dir: where the app is imported from
    try:
        sock = unix_listening_socket(uds) if uds else listening_socket(host, port)
    except OSError as exc:
        print(f"api.serve: cannot listen on {uds or f'{host}:{port}'}: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options)).run(sockets=[sock])


class Supervisor:
    def __init__(self, app: str, host: str, port: int, workers: int, options: dict, app_dir: str,
                 balance_requests: int = 0) -> None:
        self.folder, self.listener, self.balancer = "", None, None
        self.sockets = [""] * workers
        if balance_requests:
            # Bound here: a port in use is this process's clear error, and a restarted HAProxy
            # takes over the same socket. Workers trust X-Forwarded-For: only HAProxy reaches them.
            self.listener = listening_socket(host, port, reuse_port=False)
            self.listener.listen(1024)
            self.folder = balancer.worker_folder()
            self.sockets = [os.path.join(self.folder, f"worker-{i}.sock") for i in range(workers)]
            try:
                self.config = balancer.write_config(self.folder, self.listener, self.sockets, balance_requests)
            except Exception:
                shutil.rmtree(self.folder, ignore_errors=True)
                raise
            # The workers never close an idle connection first (HAProxy reuses them: a close racing
            # a reuse would fail a request it cannot retry).
            options = {**options, "forwarded_allow_ips": "*", "timeout_keep_alive": balancer.WORKER_IDLE_S}
        self.target = (app, host, port, options, app_dir, os.getpid())
        self.context = multiprocessing.get_context("spawn")
        self.stop = threading.Event()
        # Before any worker starts: a SIGTERM from then on stops them too.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        self.workers: list[multiprocessing.process.BaseProcess] = [self._start(i) for i in range(workers)]
        self.balancer_failures = 0
        if self.listener is not None:
            self._wait_for_worker_sockets()
            self._start_balancer()

    def _wait_for_worker_sockets(self) -> None:
        """HAProxy counts a worker up from its start and takes it out at the first refused
        connection, so it starts once every worker's socket takes connections (a worker still
        starting its app holds them in its backlog). A worker that dies meanwhile is run()'s."""
        deadline = time.monotonic() + STOP_TIMEOUT_S
        waiting = list(self.sockets)
        while waiting and time.monotonic() < deadline and not self.stop.is_set():
            if not all(p.is_alive() for p in self.workers):
                return
            for path in list(waiting):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    try:
                        probe.connect(path)
                        waiting.remove(path)
                    except OSError:
                        pass
            time.sleep(0.05)

    def _start(self, i: int) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=serve_worker, args=(*self.target, self.sockets[i]), name="api-worker")
        process.start()
        return process

    def _start_balancer(self) -> None:
        self.balancer = balancer.start(self.config, self.listener, balancer_child(os.getpid()))
        self.balancer_started = time.monotonic()

    def _balancer_alive(self) -> bool:
        """False when HAProxy has died twice in a row within BALANCER_SETTLE_S of its start (it
        cannot run: stop); otherwise a dead one is started again."""
        if self.balancer is None or self.balancer.poll() is None:
            return True
        quick = time.monotonic() - self.balancer_started < BALANCER_SETTLE_S
        self.balancer_failures = self.balancer_failures + 1 if quick else 0
        if self.balancer_failures >= 2:
            log.error("the balancer exits as it starts; stopping", exitcode=self.balancer.returncode)
            return False
        log.warning("the balancer exited; starting another", pid=self.balancer.pid, exitcode=self.balancer.returncode)
        self._start_balancer()
        return True

    def run(self) -> int:
        status = 0
        try:
            while not self.stop.wait(0.5):
                if not self._balancer_alive():
                    status = 1
                    break
                for i, process in enumerate(self.workers):
                    if process.is_alive():
                        continue
                    process.join()
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("worker failed before serving; stopping", pid=process.pid)
                        status = 1
                        self.stop.set()
                        break
                    log.warning("worker exited; starting another", pid=process.pid, exitcode=process.exitcode)
                    self.workers[i] = self._start(i)
        finally:
            self._stop_all()
        return status

    def _stop_all(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        if self.listener is not None:
            # HAProxy first: it stops taking connections (this process's copy of the socket is
            # closed too, or the kernel would keep accepting for no one) and ends once the requests
            # it holds, queued ones included, are answered; the workers stop after it.
            self.listener.close()
            if self.balancer is not None and self.balancer.poll() is None:
                self.balancer.send_signal(signal.SIGUSR1)  # HAProxy's soft stop
                try:
                    self.balancer.wait(max(deadline - time.monotonic(), 0) / 2)
                except subprocess.TimeoutExpired:
                    self.balancer.kill()
                    self.balancer.wait()
        for process in self.workers:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in self.workers:
            process.join(max(deadline - time.monotonic(), 0))
            if process.is_alive():
                process.kill()
                process.join()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("app", nargs="?", default="api.main:app", help="the ASGI app (default: the API)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per CPU)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn's own messages")
    parser.add_argument("--no-access-log", action="store_true", help="uvicorn's access log (the API writes its own line)")
    parser.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    parser.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"))
    parser.add_argument("--app-dir", default="", help="prepended to sys.path in each worker (as uvicorn's)")
    parser.add_argument("--balance-requests", type=int, default=0, metavar="N",
                        help="HAProxy in front: each request to the least busy worker, at most N at once in each, "
                             "the rest queued (api/balancer.py); 0, the default: a socket per worker")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.balance_requests < 0:
        parser.error("--balance-requests must be 0 (off) or more")
    configure_logging(logging.INFO)
    options = {"log_level": args.log_level, "access_log": not args.no_access_log, "loop": args.loop, "http": args.http}
    app_dir = os.path.abspath(args.app_dir) if args.app_dir else ""
    try:
        supervisor = Supervisor(args.app, args.host, args.port, args.workers, options, app_dir, args.balance_requests)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"api.serve: {exc}", file=sys.stderr, flush=True)
        return 1
    log.info("serving", app=args.app, host=args.host, port=args.port, workers=args.workers,
             pids=[p.pid for p in supervisor.workers], balancer=supervisor.balancer.pid if supervisor.balancer else None)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
