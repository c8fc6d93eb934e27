"""The per-request balancer in front of api.serve's workers (`--balance-requests`): HAProxy, from
the machine's packages (scripts/install-balancer.sh).

Why: with a socket per worker, a keep-alive connection stays on one worker for its life, so each
worker has a queue of its own. A burst on one worker's connections waits while the other has a
CPU to spare, and the tail at a given load is that of N single-server queues. Behind the balancer,
each request goes to the worker with the fewest requests in progress; at most `per_worker` run in
a worker at once and the rest wait in one queue, taken by the first worker that frees up (one
queue for N servers). Measured in docs/benchmarks.md (API, session 39).

How it is wired:
  * the supervisor binds the listening socket and hands it to HAProxy (`bind fd@N`), so a port in
    use is the supervisor's clear error, and a restarted HAProxy takes over the same socket
    without refusing a connection;
  * each worker listens on a Unix socket in a folder only this user can enter (mode 0700), so
    nothing but the balancer reaches a worker; the workers take the client's address from
    X-Forwarded-For, which the balancer sets to the address it sees after deleting any the client
    sent (a client cannot pick the address its rate limit is counted under); a client's
    X-Forwarded-Proto is deleted too (the workers would take it as the request's scheme);
  * a request to a worker that is gone (killed, being replaced) is sent to another (up to three
    retries, see config()): a refused connection always, and a GET or HEAD that got no answer at all (its worker died with
    it before answering; a streamed answer already begun cannot be sent again).
    A worker is taken out at its first connection error and checked every second (a connect to
    its socket), so retries go elsewhere (leastconn would pick the idle dead one again), and it
    is taken back once its replacement listens;
  * HAProxy gets SIGTERM from the kernel when the supervisor dies (as the workers do)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence

from wallet_lake.lake import scratch

# Timeouts: a client's idle keep-alive connection is closed after CLIENT_IDLE_S (uvicorn's own
# is 5 s; behind the balancer only HAProxy holds clients' connections); a request waits at most
# QUEUE_S for a worker (then 503); a worker gets SERVER_S to answer (the CSV export streams).
CLIENT_IDLE_S = 60
QUEUE_S = 30
SERVER_S = 300
# The workers' idle keep-alive, longer than HAProxy keeps an idle connection to them (it purges
# idle ones every few seconds), so a worker never closes one that HAProxy is about to reuse.
WORKER_IDLE_S = 3600
# Connections at most: two descriptors each (client and worker sides). HAProxy 2.6 refuses to
# start when it cannot raise its file limit that far, so the limit sizes it.
MAXCONN_AT_MOST = 4096


def max_connections() -> int:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return MAXCONN_AT_MOST if hard == resource.RLIM_INFINITY else max(64, min(MAXCONN_AT_MOST, (hard - 100) // 2))


def config(listen_fd: int, worker_sockets: Sequence[str], per_worker: int, maxconn: int = MAXCONN_AT_MOST) -> str:
    """HAProxy's configuration: the listening socket given as a file descriptor, `per_worker`
    requests at most in each worker, the rest queued, least busy worker first.
    A request is tried at most four times (`retries 3`), each time on the least busy worker in
    service. With fewer retries a worker's death showed as connections closed without an answer
    (session 39, `api/test_serve_balancer.py`); the cost is that a GET that kills its worker (out
    of memory, say) is tried on the other workers too."""
    if per_worker < 1:
        raise ValueError("per_worker must be at least 1")
    servers = "\n".join(f"  server worker-{i} unix@{path} maxconn {per_worker}" for i, path in enumerate(worker_sockets))
    return f"""global
  maxconn {maxconn}
  nbthread 1

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client {CLIENT_IDLE_S}s
  timeout http-keep-alive {CLIENT_IDLE_S}s
  timeout http-request 10s
  timeout queue {QUEUE_S}s
  timeout server {SERVER_S}s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response

frontend api
  bind fd@{listen_fd}
  http-request del-header X-Forwarded-For
  http-request del-header X-Forwarded-Proto
  option forwardfor
  default_backend workers

backend workers
  balance leastconn
  default-server check inter 1s fall 1 rise 1 observe layer4 error-limit 1 on-error mark-down
  http-request disable-l7-retry unless METH_GET or METH_HEAD
{servers}
"""


def executable() -> str:
    """HAProxy's path (Debian installs it in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        raise RuntimeError("--balance-requests needs HAProxy: run scripts/install-balancer.sh (apt-get install haproxy)")
    return found


def write_config(folder: str, listener: socket.socket, worker_sockets: Sequence[str], per_worker: int) -> str:
    """The configuration in `folder`, checked by HAProxy itself (`-c`): a refusal is an error
    with HAProxy's message, before anything starts."""
    path = os.path.join(folder, "haproxy.cfg")
    with open(path, "w") as out:
        out.write(config(listener.fileno(), worker_sockets, per_worker, max_connections()))
    done = subprocess.run([executable(), "-c", "-q", "-f", path], pass_fds=(listener.fileno(),),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"HAProxy refused its configuration: {(done.stderr or done.stdout).strip()}")
    return path


def start(config_path: str, listener: socket.socket, on_start: Callable[[], None]) -> subprocess.Popen:
    """HAProxy in the foreground on `config_path`, holding `listener` (its fd is in the config);
    `on_start` runs in the child before HAProxy execs (the supervisor's parent-death signal).
    No request log (the API writes its own line); its warnings (a worker down, up) go to stderr."""
    return subprocess.Popen([executable(), "-db", "-f", config_path], pass_fds=(listener.fileno(),),
                            preexec_fn=on_start, stdin=subprocess.DEVNULL)


def worker_folder() -> str:
    """A new folder for the workers' sockets and the configuration, mode 0700 (only this user
    reaches the workers), named after this process; first, the folders of supervisors that were
    killed (SIGKILL leaves theirs) are removed (wallet_lake/lake/scratch.py)."""
    scratch.sweep()
    return str(scratch.make(scratch.API_SERVE_PREFIX))
