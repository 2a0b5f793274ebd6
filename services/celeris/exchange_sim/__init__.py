"""celeris.exchange_sim: a local Binance USD-M futures venue (REST, WebSocket, user data, faults)."""
