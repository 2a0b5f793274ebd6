"""The bus topics components publish on and subscribe to, per symbol (one name for each, everywhere)."""


def book_topic(symbol: str) -> str:
    return f"book.{symbol}"


def trade_topic(symbol: str) -> str:
    return f"trade.{symbol}"


def mark_topic(symbol: str) -> str:
    return f"mark.{symbol}"


def order_topic(symbol: str) -> str:
    return f"orders.{symbol}"


def fill_topic(symbol: str) -> str:
    return f"fills.{symbol}"


def signal_topic(symbol: str) -> str:
    return f"signals.{symbol}"
