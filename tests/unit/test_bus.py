"""The in-process bus: hot-path subscribers first, in their order, then the others; unsubscribing either kind
keeps that order; a failing subscriber does not stop the rest."""

from __future__ import annotations

from celeris.transport.bus import InProcessBus


def test_hot_subscribers_are_called_first_and_unsubscribing_keeps_the_order():
    bus, calls = InProcessBus(), []
    for name, hot in (("dash", False), ("strategy", True), ("fanout", False), ("algos", True)):
        bus.subscribe("books.BTCUSDT", lambda m, n=name: calls.append(n), hot=hot)
    bus.publish("books.BTCUSDT", 1)
    assert calls == ["strategy", "algos", "dash", "fanout"]
    calls.clear()
    unsub = bus.subscribe("books.BTCUSDT", lambda m: calls.append("late-hot"), hot=True)
    bus.publish("books.BTCUSDT", 2)
    assert calls == ["strategy", "algos", "late-hot", "dash", "fanout"]
    calls.clear()
    unsub()
    bus.subscribe("books.BTCUSDT", lambda m: calls.append("hot-again"), hot=True)
    bus.publish("books.BTCUSDT", 3)
    assert calls == ["strategy", "algos", "hot-again", "dash", "fanout"]


def test_a_failing_subscriber_does_not_stop_the_others():
    bus, calls = InProcessBus(), []

    def broken(message):
        raise RuntimeError("boom")

    bus.subscribe("t", broken, hot=True)
    bus.subscribe("t", calls.append)
    bus.publish("t", 7)
    assert calls == [7] and bus.errors == 1
