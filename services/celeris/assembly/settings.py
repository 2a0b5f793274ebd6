"""Every component's typed settings: the one configuration model each builder takes.

A service process reads its settings from CELERIS_* variables and `--set` flags (celeris.runtime.settings);
`celeris up` derives the same objects from the TradingSystem spec (celeris.assembly.plan) and either hands
them to the builders in its own process or passes them to the processes it starts. The operator writes
the same keys into a pod's environment. Units are in the field names.
"""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from celeris.runtime.settings import ServiceSettings


class MarketDataSettings(ServiceSettings):
    """Market data settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "marketdata"
    depth_levels: int = Field(20, ge=1, le=1000)
    """Levels per side published in snapshots."""
    snapshot_limit: int = Field(1000, ge=5, le=1000)
    verify_interval_s: float = Field(60.0, ge=0)
    """Checks of every live book against a REST snapshot (0 = never)."""
    depth_speed: str = Field("@100ms", pattern=r"^(|@0ms|@100ms|@250ms|@500ms)$")
    db_batch_ms: int = Field(100, ge=10, le=60_000)
    redis_interval_ms: int = Field(50, ge=1, le=60_000)
    shm_ring_name: str = ""
    """Empty = no shared-memory ring."""
    egress_ip: str = "default"
    """Key of the request-weight budget shared through Redis: one budget per egress IP."""
    weight_limit: int = Field(2400, ge=1)


class ExecutionSettings(ServiceSettings):
    """Execution settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "execution"
    max_position_usdt: int = Field(0, ge=0)
    """Per-symbol position limit in USDT notional (0 = none)."""
    max_orders_per_second: int = Field(10, ge=1)
    leverage: int = Field(20, ge=1, le=125)
    marketdata_target: str = ""
    """host:port of market data's gRPC server: books for the paper venue and marks for validation."""
    unknown_orders_policy: str = Field("adopt", pattern="^(adopt|cancel)$")
    paper_latency_ms: float = Field(5.0, ge=0)
    paper_wallet_usdt: int = Field(100_000, ge=0)
    risk_target: str = ""
    """host:port of the risk manager for the pre-trade check (empty = none)."""
    venue_orders_per_10s: int = Field(270, ge=1)
    """The venue's new-order count limits, as we keep them (Binance USD-M: 90 % of 300 per 10 s and of 1,200
    per minute); a simulator started with other limits (`celeris sim --orders-per-10s`) takes other numbers."""
    venue_orders_per_minute: int = Field(1080, ge=1)
    venue_cancel_all_after_ms: int = Field(60_000, ge=0)
    """The dead-man's switch (countdownCancelAll) on the live venue, armed before the first live order and
    renewed every third of it; 0 = off (the TradingSystem's venue.cancelAllAfter)."""
    venue_ws_api_url: str = Field("", pattern=r"^(wss?://.+)?$", max_length=256)
    """The venue's WebSocket API (the TradingSystem's venue.wsApiUrl): new orders go over it while it is
    connected, over REST otherwise; empty = REST only."""


class StrategySettings(ServiceSettings):
    """Strategy engine settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "strategy"
    strategies: str = Field("[]", description="JSON list of {name, type, symbol, order_size, params}")
    aggregation: str = "{}"
    """JSON map symbol -> majority | weighted | first_above (default: none, each strategy acts alone)."""
    strategy_dir: str = ""
    """A directory of strategy plugin files (*.py) loaded besides the built-ins and the entry points (the
    TradingSystem's strategyDir; `celeris up --strategy-dir`). Empty = none. A strategy whose type no source
    provides stops the engine at start."""
    hot_reload: bool = False
    """Reload a plugin file of strategy_dir when it changes (the strategies of its types are rebuilt)."""
    marketdata_target: str = "127.0.0.1:50051"
    execution_target: str = "127.0.0.1:50052"
    max_position_usdt: int = Field(10_000, ge=0)
    max_total_exposure_usdt: int = Field(50_000, ge=0)
    max_orders_per_minute: int = Field(60, ge=1)
    max_daily_loss_usdt: int = Field(1_000, ge=0)

    @field_validator("strategies", "aggregation")
    @classmethod
    def _json(cls, value: str) -> str:
        json.loads(value)
        return value


class RiskSettings(ServiceSettings):
    """Risk manager settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "risk"
    execution_target: str = ""
    """host:port of execution's gRPC server, halted by an emergency stop (empty = venue-side actions only)."""
    monitor_interval_s: float = Field(1.0, gt=0)
    flatten_on_emergency: bool = True


class AccountSettings(ServiceSettings):
    """Account monitor settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "account"
    reconcile_interval_s: float = Field(5.0, gt=0)
    halt_mismatch_pct: float = Field(5.0, gt=0)
    risk_target: str = ""
    """host:port of the risk manager (its emergency stop halts trading on a mismatch)."""
    execution_target: str = ""
    """Used to halt execution directly when no risk manager runs."""
    alert_daily_drawdown_pct: float = Field(5.0, gt=0)
    alert_margin_ratio: float = Field(0.5, gt=0, le=1)
    alert_max_position_usdt: int = Field(50_000, gt=0)
    alert_liquidation_proximity_pct: float = Field(5.0, gt=0)
    snapshot_interval_s: float = Field(5.0, gt=0)


class DashboardSettings(ServiceSettings):
    component: str = "dashboard"
    http_port: int = Field(8080, ge=0, le=65535)
    token: str = ""
    auth_disabled: bool = False
    max_clients: int = Field(100, ge=1)
    marketdata_target: str = "127.0.0.1:50051"
    execution_target: str = "127.0.0.1:50052"
    strategy_target: str = "127.0.0.1:50053"
    risk_target: str = "127.0.0.1:50054"
    account_target: str = "127.0.0.1:50055"
