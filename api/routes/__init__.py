"""HTTP routes: reports and health probes."""
