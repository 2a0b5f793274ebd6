-- Market data history written by the market data service in batches (default every 100 ms).
-- Prices and quantities are exact NUMERIC values of the venue's decimal strings.
CREATE TABLE IF NOT EXISTS book_snapshots (
    ts          TIMESTAMPTZ NOT NULL,
    symbol      TEXT        NOT NULL,
    update_id   BIGINT      NOT NULL,
    best_bid    NUMERIC     NOT NULL,
    best_ask    NUMERIC     NOT NULL,
    bid_qty     NUMERIC     NOT NULL,
    ask_qty     NUMERIC     NOT NULL,
    spread      NUMERIC     NOT NULL,
    mid_price   NUMERIC     NOT NULL,
    bids        JSONB       NOT NULL,
    asks        JSONB       NOT NULL
);
CREATE INDEX IF NOT EXISTS book_snapshots_symbol_ts ON book_snapshots (symbol, ts DESC);

CREATE TABLE IF NOT EXISTS trades (
    ts              TIMESTAMPTZ NOT NULL,
    symbol          TEXT        NOT NULL,
    trade_id        BIGINT      NOT NULL,
    price           NUMERIC     NOT NULL,
    qty             NUMERIC     NOT NULL,
    buyer_is_maker  BOOLEAN     NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_symbol_ts ON trades (symbol, ts DESC);
