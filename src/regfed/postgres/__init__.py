"""PostgreSQL plumbing shared by the store and the registry adapters: pools, DSNs, the
embedded server for development and tests, and the background tasks that hold
connections."""
