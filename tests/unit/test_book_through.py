"""OrderBook.asks_through / bids_through: exactly the levels a limit order can reach, best first (the paper
venue matches with them instead of copying the whole book)."""

from hypothesis import given, strategies as st

from celeris.domain.book import OrderBook

levels = st.lists(st.tuples(st.integers(1, 500), st.integers(0, 50)), max_size=60)
limit = st.one_of(st.none(), st.integers(0, 520))


@given(bids=levels, asks=levels, diffs=levels, limit=limit)
def test_the_levels_through_a_limit_are_the_book_filtered_by_it(bids, asks, diffs, limit):
    book = OrderBook("X")
    book.apply_snapshot(bids, asks)
    book.apply_diff(diffs, diffs)  # inserts and deletes move the sorted keys too
    assert book.asks_through(limit) == [(p, q) for p, q in book.asks() if limit is None or p <= limit]
    assert book.bids_through(limit) == [(p, q) for p, q in book.bids() if limit is None or p >= limit]


def test_levels_left_far_behind_are_trimmed_to_the_bound_keeping_the_nearest():
    from celeris.domain.book import OrderBook

    book = OrderBook("BTCUSDT", max_levels=100)
    book.apply_snapshot([(1000 - i, 1) for i in range(50)], [(1001 + i, 1) for i in range(50)])
    for step in range(1, 200):  # the price walks up: new levels at the touch, old ones never updated again
        book.apply_diff([(1000 + step, 2)], [(1001 + step + 50, 2)])
        assert len(book.bids()) <= 110 and len(book.asks()) <= 110
    assert book.best_bid() == (1199, 2) and book.best_ask()[0] == 1001
    assert [p for p, _ in book.bids()] == sorted({p for p, _ in book.bids()}, reverse=True)
    assert book.bids()[-1][0] >= 1199 - 110  # the farthest went, the nearest stayed
