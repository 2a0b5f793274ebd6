"""celeris.marketdata: venue streams -> synchronized books, trades and mark prices -> subscribers."""
