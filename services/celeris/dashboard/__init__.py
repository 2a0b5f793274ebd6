"""celeris.dashboard: the dashboard server (state aggregation, WebSocket fan-out, actions) and the TUI."""
