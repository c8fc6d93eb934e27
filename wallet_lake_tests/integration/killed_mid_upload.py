"""A run worker SIGKILLed mid-upload, for test_dead_run_sweep.py:

    python -m wallet_lake_tests.integration.killed_mid_upload <partition key> <test tag>

Runs curated_payments for one landing hour on the project's Dagster instance (DAGSTER_HOME, as
the daemon sees it), curating in this process (no curation worker), over a lake whose second
curated upload waits for the first to finish and then SIGKILLs this process: the run has
announced its files and uploaded one, and no Python code of the run runs after that (no failure
path, no lease release, no run failure event). The run is left STARTED on the instance."""

from __future__ import annotations

import os
import signal
import sys
import threading

import dagster as dg

from wallet_lake.contracts.landing import CURATED_PREFIX
from wallet_lake.defs.curated.assets import curated_payments
from wallet_lake.defs.curated.launcher import CurationLauncher
from wallet_lake.lake.store import S3LakeStore
from wallet_lake.resources import LakeResource, resources_from_os_env
from wallet_lake_tests.integration.curated_support import spark_resource

TEST_TAG = "wallet_lake/test"


class _KilledMidUpload(S3LakeStore):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._uploads, self._lock, self._first_done = 0, threading.Lock(), threading.Event()

    def put_file(self, key, path) -> None:
        if not key.startswith(CURATED_PREFIX):
            return super().put_file(key, path)
        with self._lock:
            self._uploads += 1
            n = self._uploads
        if n >= 2:
            self._first_done.wait(60)
            os.kill(os.getpid(), signal.SIGKILL)
        super().put_file(key, path)
        self._first_done.set()


class KilledMidUploadLake(LakeResource):
    def store(self):
        s = super().store()
        return _KilledMidUpload(s.bucket, s.kms_key_id, s.client)


def main(partition_key: str, tag: str) -> int:
    res = resources_from_os_env()
    with dg.DagsterInstance.get() as instance:
        dg.materialize(
            [curated_payments], partition_key=partition_key, instance=instance, tags={TEST_TAG: tag},
            resources={"lake": KilledMidUploadLake(**res["lake"].model_dump()), "lazy_pyspark": spark_resource(),
                       "curation_launcher": CurationLauncher(mode="local", worker_socket=""), "postgres": res["postgres"]},
        )
    return 0  # not reached: the second upload kills the process


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
