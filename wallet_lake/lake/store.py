"""Object storage of the lake: S3 (SSE-KMS on every write) or a local folder.

One small interface so the generator, the pipeline and the tests read and write the lake the
same way whether it is S3, the local S3 API (moto) or a directory on disk."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    # Changes whenever the object is rewritten, so a rewrite is seen even when its LastModified is
    # not newer than what a reader saw before. S3: the ETag. A local lake: inode, mtime and size
    # (every write replaces the file, so a new inode), not the content MD5 that get_with_etag
    # reports: listing must not read every file.
    etag: str = ""


class ConditionalWriteFailed(RuntimeError):
    """A conditional write was refused (S3 412 PreconditionFailed): the object is no longer the
    version the writer read. Nothing was written."""

    def __init__(self, key: str, expected: str | None, found: str | None) -> None:
        self.key, self.expected, self.found = key, expected, found
        want = f"version {expected}" if expected else "no object"
        got = f"version {found}" if found else "no object"
        super().__init__(f"{key}: expected {want}, found {got}: another writer changed it since it was read; nothing was written")


class LakeStore(Protocol):
    uri: str

    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_optional(self, key: str) -> bytes | None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    # Versioned read and compare-and-swap write (etag None: only if the object does not exist).
    def get_with_etag(self, key: str) -> tuple[bytes, str] | None: ...
    def put_bytes_if(self, key: str, data: bytes, etag: str | None) -> str: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def download(self, key: str, path: Path) -> None: ...
    def delete(self, keys: Iterable[str]) -> None: ...


class S3LakeStore:
    """A bucket; every object is written with SSE-KMS under the configured key. Without a key
    the store only reads (the lake query layer reads manifests so): every write refuses."""

    def __init__(self, bucket: str, kms_key_id: str, client) -> None:
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self.client = client
        self.uri = f"s3://{bucket}"

    def _sse(self) -> dict:
        if not self.kms_key_id:
            raise ValueError("S3 lake writes need a KMS key id (WL_KMS_KEY_ID): objects are never written unencrypted")
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out.append(ObjectInfo(obj["Key"], obj["Size"], obj["LastModified"].astimezone(timezone.utc), obj.get("ETag", "")))
        return sorted(out, key=lambda o: o.key)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def get_optional(self, key: str) -> bytes | None:
        try:
            return self.get_bytes(key)
        except self.client.exceptions.NoSuchKey:
            return None

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **self._sse())

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (the version put_bytes_if compares), or None when absent."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return resp["Body"].read(), resp["ETag"]

    def put_bytes_if(self, key: str, data: bytes, etag: str | None) -> str:
        """Write only if the object is still version `etag` (If-Match), or still absent when
        `etag` is None (If-None-Match: *); S3 decides atomically. Returns the new ETag; raises
        ConditionalWriteFailed when another writer got there first."""
        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **condition, **self._sse())["ETag"]
        except ClientError as e:
            # 412: the version differs; 404 (If-Match): the object is gone; 409: a concurrent
            # conditional write to the key was in flight.
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") not in (404, 409, 412):
                raise
            current = self.get_with_etag(key)
            if current is not None and current[0] == data:  # a retried PUT whose first attempt landed
                return current[1]
            raise ConditionalWriteFailed(key, etag, current[1] if current else None) from e

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key, ExtraArgs=self._sse())

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, key, str(path))

    def delete(self, keys: Iterable[str]) -> None:
        batch = [{"Key": k} for k in keys]
        for i in range(0, len(batch), 1000):
            resp = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch[i : i + 1000], "Quiet": True})
            if resp.get("Errors"):
                raise RuntimeError(f"could not delete lake objects: {resp['Errors'][:5]}")


class LocalLakeStore:
    """A directory standing in for the bucket (keys are relative paths). For offline use only;
    writes are atomic (temp file + rename) so readers never see half a file."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"key {key!r} escapes the lake root")
        return p

    def list(self, prefix: str) -> list[ObjectInfo]:
        out = []
        # Walk only the deepest folder the prefix names (raw/payments/dt=2026/11/24/ reads one day).
        base = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self.root
        if not base.is_dir():
            return out
        for p in base.rglob("*"):
            if p.is_file() and not p.name.endswith(".tmp"):
                key = p.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    st = p.stat()
                    out.append(ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc), f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"))
        return sorted(out, key=lambda o: o.key)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def get_optional(self, key: str) -> bytes | None:
        p = self._path(key)
        return p.read_bytes() if p.is_file() else None

    def put_bytes(self, key: str, data: bytes) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)

    @staticmethod
    def _content_etag(data: bytes) -> str:
        # The content's MD5, as S3 reports for a plain PUT: mtime and size could repeat.
        return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        data = self.get_optional(key)
        return None if data is None else (data, self._content_etag(data))

    def put_bytes_if(self, key: str, data: bytes, etag: str | None) -> str:
        """Compare-and-swap like S3's If-Match / If-None-Match: under an exclusive flock of the
        object's folder (between threads and processes), check the version, then write."""
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(p.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            current = self.get_with_etag(key)
            found = current[1] if current else None
            if found != etag:
                raise ConditionalWriteFailed(key, etag, found)
            self.put_bytes(key, data)
            return self._content_etag(data)
        finally:
            os.close(folder)  # releases the lock

    def put_file(self, key: str, path: Path) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, p)

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), path)

    def delete(self, keys: Iterable[str]) -> None:
        for k in keys:
            self._path(k).unlink(missing_ok=True)


def s3_client(endpoint_url: str | None = None, region: str | None = None):
    """boto3 S3 client; endpoint_url is set only for an S3-compatible API such as the local moto.
    region: the caller's AwsSettings.aws_region; None leaves it to boto3 (AWS_DEFAULT_REGION, the
    profile, or the instance's), as in the Glue job, whose package has no pydantic-settings."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def open_lake(uri: str, *, kms_key_id: str | None = None, s3_endpoint_url: str | None = None, region: str | None = None) -> LakeStore:
    """Open the lake at s3://bucket or file:///path (or a plain path)."""
    if uri.startswith("s3://"):
        bucket = uri[len("s3://") :].strip("/")
        if "/" in bucket:
            raise ValueError(f"lake URI must name a bucket only, got {uri!r}")
        return S3LakeStore(bucket, kms_key_id or "", s3_client(s3_endpoint_url, region))
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return LocalLakeStore(Path(uri))


def open_lake_from_env() -> LakeStore:
    """The lake named by WL_LAKE_URI (default s3://$WL_LAKE_BUCKET), for command-line tools."""
    from wallet_lake.settings import LakeSettings, load

    lake = load(LakeSettings)
    return open_lake(lake.lake_uri or f"s3://{lake.lake_bucket}", kms_key_id=lake.kms_key_id,
                     s3_endpoint_url=lake.s3_endpoint_url, region=lake.aws_region)


def landing_objects(store: LakeStore, hour: datetime) -> list[ObjectInfo]:
    """The NDJSON objects of a landing hour as the pipeline counts and reads them (the raw step,
    the curation's inputs and the :20 backstop list the same set)."""
    from wallet_lake.contracts.landing import landing_prefix

    return [o for o in store.list(landing_prefix(hour)) if o.key.endswith(".ndjson")]
