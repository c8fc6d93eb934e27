"""bench/open_loop_driver, the Go driver of bench/api_open_loop.py, against a small HTTP/1.1
server in this process: every scheduled request is sent once and recorded with its answer's
status; a request held back because every connection is busy keeps its due time, so the wait
counts as latency; requests still queued after the drain are written as never sent, and a
request without an answer as status 0. The bounds checked follow from the server's own sleeps
(a request queued behind a 0.3 s answer cannot go out sooner); nothing here times the driver."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
KEY = "key-not-a-secret"


@pytest.fixture(scope="module")
def open_loop():
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        import api_open_loop
    finally:
        sys.path.remove(str(BENCH))
    return api_open_loop


@pytest.fixture(scope="module")
def driver(open_loop) -> Path:
    return open_loop.ensure_open_loop_driver()


class Server:
    """HTTP/1.1 with keep-alive. Paths: /ok (200, Content-Length), /missing (404), /chunked
    (200 in chunks, written in three pieces), /big (100 kB), /close (200, then the server closes), /stall (0.3 s, then 200),
    /slow (1 s, then 200), /hang (never answers). Records (path, X-API-Key) of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                target = lines[0].split()[1]
                headers = dict(line.split(": ", 1) for line in lines[1:] if line)
                self.seen.append((target, headers.get("X-API-Key")))
                path = target.split("?")[0]
                if path == "/hang":
                    await asyncio.sleep(3600)
                if path in ("/stall", "/slow"):
                    await asyncio.sleep(0.3 if path == "/stall" else 1.0)
                if path == "/chunked":
                    # In pieces, so the driver sees a partial answer first.
                    for piece in (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                                  b"c\r\n5;ext=1\r\nde\r\nf\r\n0\r\nTrail", b"er: x\r\n\r\n"):
                        writer.write(piece)
                        await writer.drain()
                        await asyncio.sleep(0.002)
                elif path == "/big":  # larger than the driver's first read buffer
                    body = b"x" * 100_000
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                elif path == "/missing":
                    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found")
                else:
                    close = path == "/close"
                    body = b'{"ok": true}'
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
                                 % (len(body), b"Connection: close\r\n" if close else b"", body))
                    if close:
                        await writer.drain()
                        break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:  # connections still open (the /hang one)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def targets(path: Path, port: int, paths: list[str]) -> Path:
    path.write_text("".join(json.dumps({"method": "GET", "url": f"http://127.0.0.1:{port}{p}", "header": {"X-API-Key": [KEY]}})
                            + "\n" for p in paths))
    return path


def run(driver: Path, tmp_path: Path, target_file: Path, *, rate: int, duration: str, connections: int,
        extra: tuple[str, ...] = ()) -> list[tuple[int, int, int, int, int]]:
    out = tmp_path / "results.out"
    subprocess.run([str(driver), f"-targets={target_file}", f"-rate={rate}", f"-duration={duration}",
                    f"-connections={connections}", f"-output={out}", *extra], check=True, timeout=60)
    return [tuple(map(int, line.split())) for line in out.read_text().splitlines()]


def test_every_scheduled_request_is_sent_once_with_its_answer(driver, server, tmp_path):
    kinds = ["/ok", "/missing", "/chunked", "/close", "/big"]
    paths = [f"{kinds[k % 5]}?id={k}" for k in range(200)]
    rows = run(driver, tmp_path, targets(tmp_path / "t.json", server.port, paths), rate=200, duration="1s", connections=4)
    assert [r[0] for r in rows] == list(range(200))
    # Due (k+1)/rate after t0, to the nanosecond; never sent before that.
    assert all(due == (seq + 1) * 1_000_000_000 // 200 for seq, due, *_ in rows)
    assert all(sent >= due and latency > 0 for _, due, sent, latency, _ in rows)
    assert [r[4] for r in rows] == [404 if k % 5 == 1 else 200 for k in range(200)]
    # The server saw each request once, key included.
    assert Counter(target for target, _ in server.seen) == Counter(paths)
    assert {key for _, key in server.seen} == {KEY}
    # Four connections dialled before t0; each of the 40 "Connection: close" answers but the last
    # made the driver dial again for its next request.
    assert server.connections == 4 + 39


def test_a_request_held_back_by_busy_connections_counts_from_its_due_time(driver, server, tmp_path, open_loop):
    # One connection at 100/s; request 5 takes 0.3 s, so 6 and after wait for it.
    paths = [("/stall" if k == 5 else "/ok") + f"?id={k}" for k in range(50)]
    rows = run(driver, tmp_path, targets(tmp_path / "t.json", server.port, paths), rate=100, duration="500ms", connections=1)
    by_seq = {r[0]: r for r in rows}
    _, due5, sent5, latency5, _ = by_seq[5]
    _, due6, sent6, _, _ = by_seq[6]
    assert latency5 >= 300_000_000
    assert sent6 >= sent5 + 300_000_000
    figures = open_loop.from_schedule([(s, sent, lat, code) for s, _, sent, lat, code in rows], 100, t0=0)
    # Request 6 was due 10 ms after request 5 and could not leave before 5's answer: from its
    # schedule it took at least 290 ms, though its own answer came at once.
    assert (sent6 - due6) / 1e6 >= 290
    assert figures["send_lag_ms"]["max"] >= 290
    assert figures["p99_ms"] >= 290 > figures["response_from_send_ms"]["p50"]
    assert figures["errors"] == 0 and figures["requests"] == 50


def test_requests_still_queued_after_the_drain_are_never_sent(driver, server, tmp_path, open_loop):
    # One connection, request 0 takes 1 s: the other 49 were due by 0.5 s and the drain is 0.
    paths = ["/slow?id=0", *(f"/ok?id={k}" for k in range(1, 50))]
    rows = run(driver, tmp_path, targets(tmp_path / "t.json", server.port, paths), rate=100, duration="500ms",
               connections=1, extra=("-drain=0s",))
    assert rows[0][4] == 200
    assert [r[4] for r in rows[1:]] == [-1] * 49
    assert [t for t, _ in server.seen] == ["/slow?id=0"]
    results = tmp_path / "results.out"
    kept, unsent = open_loop.read_open_loop_results(results)
    figures = open_loop.from_schedule(kept, 100, t0=0, unsent=unsent)
    assert (figures["requests"], figures["unsent"], figures["errors"]) == (50, 49, 49)


def test_a_request_without_an_answer_is_status_0_and_the_next_goes_out_on_a_new_connection(driver, server, tmp_path):
    paths = ["/ok?id=0", "/hang?id=1", *(f"/ok?id={k}" for k in range(2, 10))]
    rows = run(driver, tmp_path, targets(tmp_path / "t.json", server.port, paths), rate=20, duration="500ms",
               connections=1, extra=("-timeout=200ms",))
    assert [r[4] for r in rows] == [200, 0, *([200] * 8)]
    assert rows[1][3] >= 200_000_000  # it waited for the whole timeout
    assert server.connections == 2


def test_bad_targets_are_refused_with_the_line(driver, tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"method": "POST", "url": "http://127.0.0.1:1/x"}) + "\n")
    done = subprocess.run([str(driver), f"-targets={bad}", "-rate=1", "-duration=1s", f"-output={tmp_path / 'o'}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "line 1: only plain-HTTP GET targets are supported" in done.stderr
