-- Execution's journal: every order event and every fill, appended, never updated.
CREATE TABLE IF NOT EXISTS order_events (
    id               BIGSERIAL,
    ts               TIMESTAMPTZ NOT NULL,
    client_order_id  TEXT        NOT NULL,
    venue_order_id   BIGINT,
    symbol           TEXT        NOT NULL,
    side             TEXT        NOT NULL,
    type             TEXT        NOT NULL,
    price            NUMERIC,
    quantity         NUMERIC     NOT NULL,
    status           TEXT        NOT NULL,
    event_type       TEXT        NOT NULL,
    mode             TEXT        NOT NULL,
    detail           TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS order_events_client ON order_events (client_order_id, id);

CREATE TABLE IF NOT EXISTS fills (
    ts               TIMESTAMPTZ NOT NULL,
    client_order_id  TEXT        NOT NULL,
    venue_order_id   BIGINT,
    trade_id         BIGINT      NOT NULL,
    symbol           TEXT        NOT NULL,
    side             TEXT        NOT NULL,
    price            NUMERIC     NOT NULL,
    quantity         NUMERIC     NOT NULL,
    commission       NUMERIC     NOT NULL,
    is_maker         BOOLEAN     NOT NULL,
    realized_pnl     NUMERIC     NOT NULL,
    mode             TEXT        NOT NULL,
    PRIMARY KEY (symbol, trade_id, mode)
);
