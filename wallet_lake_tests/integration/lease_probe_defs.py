"""A code location for the lease tests (`dagster asset materialize -f` this file): a probe asset on
the landing-hour partitions that holds its hours the way the pipeline's assets do
(@holds_landing_hours), and tells the test what it does through files in $WL_TEST_LEASE_PROBE_DIR:
it appends `enter <run id>` to events.log, waits until the test creates go-<run id>, then appends
`exit <run id>`."""


import os
import time
from pathlib import Path

import dagster as dg

from wallet_lake.defs.ops.hour_leases import holds_landing_hours
from wallet_lake.partitions import hourly_landing
from wallet_lake.resources import PostgresResource, dagster_env, resource_values

CONTROL_ENV = "WL_TEST_LEASE_PROBE_DIR"
PROBE_KEY = ["zz_test", "lease_probe"]
_GO_DEADLINE_S = 300


def _note(control: Path, line: str) -> None:
    with open(control / "events.log", "a") as f:  # O_APPEND: whole lines, in the order written
        f.write(line + "\n")


@dg.asset(key=PROBE_KEY, partitions_def=hourly_landing)
@holds_landing_hours
def lease_probe(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    control = Path(os.environ[CONTROL_ENV])
    _note(control, f"enter {context.run_id}")
    deadline = time.monotonic() + _GO_DEADLINE_S
    while not (control / f"go-{context.run_id}").exists():
        if time.monotonic() > deadline:
            raise dg.Failure(f"the test never created go-{context.run_id} in {control}")
        time.sleep(0.1)
    _note(control, f"exit {context.run_id}")
    return dg.MaterializeResult()


defs = dg.Definitions(assets=[lease_probe], resources={"postgres": resource_values(dagster_env)["postgres"]})
