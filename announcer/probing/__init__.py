"""Probe scheduling: build every probe of a configuration (as one transaction), run one task
per check on a cadence that does not drift, and share one connection watcher per endpoint."""
