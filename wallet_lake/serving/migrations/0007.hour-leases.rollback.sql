-- Undo 0007: runs no longer take landing-hour leases (the assets then fail until it is applied again).
DROP TABLE IF EXISTS landing_hour_leases;
