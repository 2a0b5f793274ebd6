-- Risk manager: policies (the allowed condition, stated positively), audits of every pre-trade check,
-- and emergency stops with who re-enabled trading and when.
CREATE TABLE IF NOT EXISTS risk_policies (
    name        TEXT PRIMARY KEY,
    metric      TEXT        NOT NULL,
    operator    TEXT        NOT NULL,
    threshold   NUMERIC     NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('hard', 'soft', 'emergency')),
    scope       TEXT        NOT NULL CHECK (scope IN ('account', 'symbol', 'strategy')),
    scope_id    TEXT        NOT NULL DEFAULT '',
    enabled     BOOLEAN     NOT NULL DEFAULT TRUE,
    priority    INTEGER     NOT NULL DEFAULT 100,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pre_trade_checks (
    ts                  TIMESTAMPTZ NOT NULL,
    request_id          TEXT        NOT NULL,
    symbol              TEXT        NOT NULL,
    side                TEXT        NOT NULL,
    quantity            NUMERIC     NOT NULL,
    price               NUMERIC     NOT NULL,
    approved            BOOLEAN     NOT NULL,
    violations          JSONB       NOT NULL,
    processing_time_us  BIGINT      NOT NULL,
    leverage            NUMERIC,
    margin_ratio        NUMERIC
);

CREATE TABLE IF NOT EXISTS emergency_stops (
    id                BIGSERIAL PRIMARY KEY,
    triggered_at      TIMESTAMPTZ NOT NULL,
    reason            TEXT        NOT NULL,
    triggered_by      TEXT        NOT NULL,
    account_state     JSONB       NOT NULL,
    orders_canceled   INTEGER     NOT NULL DEFAULT 0,
    positions_closed  INTEGER     NOT NULL DEFAULT 0,
    completed_at      TIMESTAMPTZ,
    re_enabled_at     TIMESTAMPTZ,
    re_enabled_by     TEXT
);
