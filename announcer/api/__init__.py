"""The operator edge: the HTTP API, the Prometheus metrics, the status document, and the
client the CLI uses. Everything here reads the reducer's published snapshot."""
