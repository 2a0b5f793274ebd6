"""Generated API code (see scripts/gen-proto)."""
