"""The soak-and-chaos harness (bench/soak.py) and its independent check; the short variant runs
in the test suite (wallet_lake_tests/e2e/test_soak_short.py)."""
