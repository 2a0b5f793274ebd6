"""Transports between engines: the in-process bus, the shared-memory ring, Redis pub/sub."""
