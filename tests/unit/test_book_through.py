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
