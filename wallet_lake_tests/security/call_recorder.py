"""Records every AWS API call made through botocore in this process: service, operation, the
request parameters that name a resource, the HTTP status, the error code and the ARN the answer
names (a resolved KMS key, a secret's full ARN). Each call is tagged with the role it is made as.

Installed by wrapping botocore's one client factory (botocore.session.Session.create_client),
so every client is seen, whichever boto3/botocore session made it (boto3.client, pyathena's
own session, s3transfer's uploads). Nothing is stubbed: the calls go to the local AWS API as
they would to AWS. Only stdlib and botocore are imported here: the Glue job's process loads this
file by path (callrec_site/sitecustomize.py), not through the project's packages.

    rec = install(); rec.role = "dagster-code-location.json"; ...; rec.calls
    with rec.clients_as("glue-curate-job.json"): client = ...  # this client's calls: that role
    with rec.clients_as(None): client = ...                    # a stand-in for an AWS service: not recorded
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager

_UNSET = object()
# Request parameters that name what a call acts on (the IAM resource and condition keys).
_PARAMS = (
    "Bucket", "Key", "Prefix", "ServerSideEncryption", "SSEKMSKeyId", "KeyId", "AliasName", "TargetKeyId", "Name",
    "DatabaseName", "TableName", "JobName", "SecretId", "logGroupName", "logStreamName", "logStreamNamePrefix", "WorkGroup",
    "QueryString", "QueryExecutionId",
)


class CallRecorder:
    def __init__(self, log_path: str | None = None, role: str | None = None) -> None:
        self.calls: list[dict] = []
        self.role = role
        self._log_path = log_path
        self._lock = threading.Lock()
        self._creation_role = _UNSET

    @contextmanager
    def clients_as(self, role: str | None):
        """Clients created inside this block record as `role` (None: not recorded)."""
        previous, self._creation_role = self._creation_role, role
        try:
            yield
        finally:
            self._creation_role = previous

    def attach(self, client) -> None:
        fixed = self._creation_role
        if fixed is None:
            return
        events = client.meta.events

        def before(params, model, context, **_):
            entry = {"role": self.role if fixed is _UNSET else fixed, "service": model.service_model.service_name,
                     "operation": model.name, "params": _subset(model.name, params)}
            context["wl_recorded_call"] = entry

        def after(http_response, parsed, context, **_):
            entry = context.get("wl_recorded_call")
            if entry is None:
                return
            entry["status"] = http_response.status_code
            entry["error"] = (parsed.get("Error") or {}).get("Code")
            arn = (parsed.get("KeyMetadata") or {}).get("Arn") or parsed.get("ARN")
            if arn:
                entry["response_arn"] = arn
            if entry["operation"] == "StartQueryExecution" and parsed.get("QueryExecutionId"):
                entry["params"]["QueryExecutionId"] = parsed["QueryExecutionId"]
            self._add(entry)

        events.register("before-parameter-build", before, unique_id=f"wl-rec-before-{id(self)}")
        events.register("after-call", after, unique_id=f"wl-rec-after-{id(self)}")

    def _add(self, entry: dict) -> None:
        with self._lock:
            if self._log_path:
                with open(self._log_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            else:
                self.calls.append(entry)


def _subset(operation: str, params: dict) -> dict:
    out = {k: params[k] for k in _PARAMS if isinstance(params.get(k), (str, int))}
    for nested in ("TableInput", "DatabaseInput"):  # CreateTable/UpdateTable, CreateDatabase name it inside
        if isinstance(params.get(nested), dict) and "Name" in params[nested]:
            out.setdefault("TableName" if nested == "TableInput" else "Name", params[nested]["Name"])
    if operation == "DeleteObjects":
        out["Keys"] = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
    if operation == "StartQueryExecution":
        out["WorkGroup"] = params.get("WorkGroup")
        out["OutputLocation"] = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        out["Database"] = (params.get("QueryExecutionContext") or {}).get("Database")
    if operation == "BatchCreatePartition":
        out["Partitions"] = len(params.get("PartitionInputList", []))
    return out


_installed: CallRecorder | None = None


def install(log_path: str | None = None, role: str | None = None) -> CallRecorder:
    """Record every client created from now on in this process (once per process)."""
    global _installed
    if _installed is not None:
        return _installed
    import botocore.session

    recorder = _installed = CallRecorder(log_path, role)
    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        recorder.attach(client)
        return client

    botocore.session.Session.create_client = create_client
    return recorder


def install_from_env() -> CallRecorder | None:
    """For a child process (the Glue job): WL_AWS_CALL_LOG names a JSON-lines file, WL_AWS_CALL_ROLE the role."""
    path = os.environ.get("WL_AWS_CALL_LOG")
    return install(path, os.environ.get("WL_AWS_CALL_ROLE")) if path else None


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
