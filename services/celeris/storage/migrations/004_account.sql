-- Account monitor history: balance and PnL snapshots (hypertables when TimescaleDB exists).
CREATE TABLE IF NOT EXISTS balance_snapshots (
    ts              TIMESTAMPTZ NOT NULL,
    asset           TEXT        NOT NULL,
    wallet_balance  NUMERIC     NOT NULL,
    equity          NUMERIC     NOT NULL
);
CREATE INDEX IF NOT EXISTS balance_snapshots_ts ON balance_snapshots (ts DESC);

CREATE TABLE IF NOT EXISTS pnl_snapshots (
    ts              TIMESTAMPTZ NOT NULL,
    symbol          TEXT        NOT NULL,
    realized_pnl    NUMERIC     NOT NULL,
    unrealized_pnl  NUMERIC     NOT NULL,
    total_pnl       NUMERIC     NOT NULL,
    total_fees      NUMERIC     NOT NULL,
    equity          NUMERIC     NOT NULL
);
CREATE INDEX IF NOT EXISTS pnl_snapshots_ts ON pnl_snapshots (ts DESC);
CREATE INDEX IF NOT EXISTS pnl_snapshots_symbol_ts ON pnl_snapshots (symbol, ts DESC);
