"""celeris.runtime: what every service process shares (settings, logs, metrics, gRPC boot, health)."""
