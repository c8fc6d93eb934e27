"""Loaded at start-up by a child process whose PYTHONPATH names this folder (the Glue job run by
the call recording, wallet_lake_tests/security/record_modes.py): records its AWS calls when
WL_AWS_CALL_LOG is set. The recorder is loaded by path, so the job imports the project only
from its own package, as on Glue."""

import os

if os.environ.get("WL_AWS_CALL_LOG"):
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "wl_call_recorder", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "call_recorder.py"))
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    _mod.install_from_env()
