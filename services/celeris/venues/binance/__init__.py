"""The Binance USD-M futures connector (REST, streams, user data stream, codec)."""
