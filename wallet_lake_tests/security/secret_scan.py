"""The secret scan of a full run: which secrets to look for, and where.

`secrets_to_scan` builds the one list of secrets (every name in KNOWN_SECRETS, the secret part of
each API key created in the run, every TLS private key of the stack). Each scan location is a
function yielding (where, bytes) pairs; `scan` answers "NAME in WHERE" for every secret found,
never a value, so a failing test cannot leak what it found."""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from urllib.parse import quote

from wallet_lake.security.secrets import KNOWN_SECRETS

# A shorter secret could be guessed, and could turn up in unrelated text by chance: a scan for it
# proves nothing either way.
MIN_SECRET_LEN = 16
Blob = tuple[str, bytes]  # (where, content)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)
# Line breaks, real or escaped in JSON/repr (once or twice), and blanks: a PEM body or a secret
# wrapped over lines is still found.
_BREAKS = re.compile(rb"\\+[rn]|[\r\n\t ]")


class WeakSecret(RuntimeError):
    """A secret is missing or too short for the scan to mean anything (names it, never its value)."""


@dataclass(frozen=True)
class Secret:
    """A secret by name and the byte strings whose presence means it leaked."""

    name: str
    needles: tuple[bytes, ...] = field(repr=False)

    def __repr__(self) -> str:  # never the value, whatever prints this
        return f"Secret({self.name})"


def _base64_forms(value: bytes) -> set[bytes]:
    """The parts of base64(value) that do not depend on what precedes it in the encoded stream
    (three alignments; standard and URL-safe alphabets): finds e.g. an HTTP Basic header."""
    forms = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + value).rstrip(b"=")
        start = 4 if k else 0  # the first group mixes the padding bytes in
        end = len(enc) - ((k + len(value)) % 3 != 0) * 4  # a partial last group depends on what follows
        part = enc[start:max(start, end)]
        if len(part) >= MIN_SECRET_LEN:
            forms |= {part, part.replace(b"+", b"-").replace(b"/", b"_")}
    return forms


def value_secret(name: str, value: str) -> Secret:
    """A secret string: itself, percent-encoded (URLs, form bodies), and inside base64."""
    if len(value) < MIN_SECRET_LEN:
        raise WeakSecret(f"{name} is {len(value)} characters long; the scan needs at least {MIN_SECRET_LEN}")
    raw = value.encode()
    return Secret(name, tuple(sorted({raw, quote(value, safe="").encode(), *_base64_forms(raw)})))


def pem_blocks(text: bytes) -> list[tuple[str, bytes]]:
    """(label, body without line breaks) of every PEM block in `text`."""
    return [(m.group(1).decode(), _BREAKS.sub(b"", m.group(2))) for m in _PEM_BLOCK.finditer(text)]


def tls_private_keys(tls_dir: Path) -> list[Secret]:
    """Every private key in the stack's TLS folder, named by its first file (the broker's key is
    also in broker-keystore.pem). Needles: the whole body, and each 64-character line of it that
    no certificate there contains (a certificate holds the public half, which is no secret)."""
    files = sorted(p for p in tls_dir.glob("*.pem") if p.is_file())
    blocks = [(p.name, label, body) for p in files for label, body in pem_blocks(p.read_bytes())]
    public = b"\n".join(body for _, label, body in blocks if "PRIVATE KEY" not in label)
    seen: dict[bytes, Secret] = {}
    for name, label, body in blocks:
        if "PRIVATE KEY" not in label or body in seen:
            continue
        lines = {body[i:i + 64] for i in range(0, len(body), 64)}
        needles = {body} | {line for line in lines if len(line) >= MIN_SECRET_LEN and line not in public}
        seen[body] = Secret(f"TLS private key {name}", tuple(sorted(needles)))
    return list(seen.values())


# Secrets the local stack has no value for, and why (scanned whenever they are set).
UNUSED_LOCALLY = {
    "WL_PG_ADMIN_PASSWORD": "the local cluster administrator logs in over the stack's Unix socket (folder 0700), "
                            "without a password; on RDS it is the master user's",
}


def secrets_to_scan(env: Mapping[str, str], api_key_secrets: Mapping[str, str], tls_dir: Path) -> list[Secret]:
    """Every secret of a run: KNOWN_SECRETS from `env`, API keys by id (the secret part), TLS
    private keys. Raises WeakSecret when one is missing or shorter than MIN_SECRET_LEN."""
    missing = [n for n in KNOWN_SECRETS if not env.get(n) and n not in UNUSED_LOCALLY]
    if missing:
        raise WeakSecret(f"not set, so a scan for them would pass without looking: {', '.join(missing)}")
    found = [value_secret(n, env[n]) for n in KNOWN_SECRETS if env.get(n)]
    found += [value_secret(f"API key {key_id}", s) for key_id, s in sorted(api_key_secrets.items())]
    keys = tls_private_keys(tls_dir)
    if not keys:
        raise WeakSecret(f"no private key under {tls_dir}")
    return found + keys


def scan(secrets: Iterable[Secret], blobs: Iterable[Blob]) -> list[str]:
    """'NAME in WHERE' for every secret found in every blob."""
    secrets = list(secrets)
    hits = []
    for where, data in blobs:
        flat = _BREAKS.sub(b"", data)
        hits += [f"{s.name} in {where}" for s in secrets if any(n in flat for n in s.needles)]
    return hits


# ---------------------------------------------------------------- where to look


def files_under(folder: Path, label: str) -> Iterator[Blob]:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            yield f"{label}/{p.relative_to(folder)}", p.read_bytes()


def run_events(instance, run_id: str) -> Iterator[Blob]:
    """The run's record (config, tags) and every event of its event log, as Dagster stores them
    (materialization and check metadata included)."""
    import dagster as dg

    yield f"run {run_id}", dg.serialize_value(instance.get_run_by_id(run_id)).encode()
    for i, record in enumerate(instance.all_logs(run_id)):
        kind = record.dagster_event.event_type_value if record.dagster_event else "log message"
        yield f"event {i} ({kind}) of run {run_id}", dg.serialize_value(record).encode()


def connect_rest(client, connector: str) -> Iterator[Blob]:
    """What Connect's REST API answers about the connectors: list (with status and info), each
    connector, its config, status, tasks and each task's status."""
    paths = ["/connectors?expand=status&expand=info", f"/connectors/{connector}", f"/connectors/{connector}/config",
             f"/connectors/{connector}/status", f"/connectors/{connector}/tasks"]
    tasks = client.http.get(f"/connectors/{connector}/tasks")
    tasks.raise_for_status()
    paths += [f"/connectors/{connector}/tasks/{t['id']['task']}/status" for t in tasks.json()]
    for path in paths:
        resp = client.http.get(path)
        if resp.status_code != 200:
            raise AssertionError(f"Connect answered {resp.status_code} to GET {path}")
        yield f"Connect REST GET {path}", resp.content


def topic_records(consumer_config: dict, topic: str, timeout: float = 30.0) -> Iterator[Blob]:
    """Every record (key and value) of `topic`, from the beginning to its end offsets now."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**consumer_config, "group.id": f"t-secret-scan-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        seen, deadline = 0, time.monotonic() + timeout
        while seen < sum(ends.values()) and time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is None or msg.error():
                continue
            seen += 1
            yield f"topic {topic} partition {msg.partition()} offset {msg.offset()}", (msg.key() or b"") + b"\n" + (msg.value() or b"")
        if seen != sum(ends.values()) or seen == 0:
            raise AssertionError(f"read {seen} of {sum(ends.values())} records of {topic}")
    finally:
        c.close()


def process_cmdlines() -> dict[bytes, str]:
    """Command line -> 'pid N (program)' of every process now (arguments joined by spaces)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        if argv:
            program = Path(argv.split(b"\0")[0].decode(errors="replace")).name
            out.setdefault(argv.replace(b"\0", b" ").strip(), f"pid {entry.name} ({program})")
    return out


class CmdlineSampler:
    """Collects the command line of every process seen while it runs (a full flow spawns
    short-lived ones: run workers, Spark's JVM), polling /proc."""

    def __init__(self, interval: float = 0.2) -> None:
        self.seen: dict[bytes, str] = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for cmd, where in process_cmdlines().items():
                self.seen.setdefault(cmd, where)
            self._stop.wait(self._interval)

    def __enter__(self) -> "CmdlineSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cmdline_blobs(cmdlines: Mapping[bytes, str]) -> Iterator[Blob]:
    for cmd, where in cmdlines.items():
        yield f"command line of {where}", cmd


def parquet_metadata(key: str, data: bytes) -> Iterator[Blob]:
    """The metadata of one Parquet object: its raw footer, file key-value metadata (the Arrow
    schema decoded from base64), the schema with field metadata, and each column chunk's
    key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    footer_len = int.from_bytes(data[-8:-4], "little")
    yield f"{key}: footer", data[-8 - footer_len:-8]
    pf = pq.ParquetFile(BytesIO(data))
    md = pf.metadata
    kv = md.metadata or {}
    yield f"{key}: file key-value metadata", b"\n".join(k + b"=" + v for k, v in kv.items()) + b"\n" + (md.created_by or "").encode()
    if b"ARROW:schema" in kv:
        yield f"{key}: ARROW:schema", pa.ipc.read_schema(pa.py_buffer(base64.b64decode(kv[b"ARROW:schema"]))).to_string(
            show_field_metadata=True, show_schema_metadata=True).encode()
    yield f"{key}: schema", (str(pf.schema) + "\n" + pf.schema_arrow.to_string(show_field_metadata=True, show_schema_metadata=True)).encode()
    for r in range(md.num_row_groups):
        for c in range(md.num_columns):
            col = md.row_group(r).column(c)
            if col.metadata:
                yield f"{key}: row group {r} column {col.path_in_schema} key-value metadata", b"\n".join(k + b"=" + v for k, v in col.metadata.items())


def is_parquet(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"PAR1" and data[-4:] == b"PAR1"
