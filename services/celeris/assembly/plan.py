"""From one TradingSystem (the spec `celeris up -f` reads, or the flags' equivalent) to each component's
settings: the same keys whether `celeris up` builds the components in its own process or passes them as
`--set key=value` to the processes it starts (and the operator writes them into a pod's environment)."""

from __future__ import annotations

import json
from typing import Any

from celeris.assembly import settings as component_settings
from celeris.runtime.settings import load_settings

SETTINGS = {"marketdata": component_settings.MarketDataSettings, "execution": component_settings.ExecutionSettings,
            "strategy": component_settings.StrategySettings, "risk": component_settings.RiskSettings,
            "account": component_settings.AccountSettings, "dashboard": component_settings.DashboardSettings}
"""Every component's settings class, by component name."""


def spec_keys(name: str, symbols: list[str], mode: str, risk: Any, strategies: list[dict[str, Any]],
              cancel_all_after: str = "60s", strategy_dir: str = "") -> dict[str, Any]:
    """The settings component `name` takes from a TradingSystem's spec: its symbols, the mode, the risk
    limits (`spec.risk`, a RiskSpec: every component that checks orders applies the same numbers), the
    strategies (the strategy engine's shape) and where their plugins are (`spec.strategyDir`, as the process
    sees it), and the venue's dead-man's switch (`spec.venue.cancelAllAfter`).
    `celeris up` and the operator both call this."""
    from celeris.config.spec import duration_ms

    keys: dict[str, Any] = {"symbols": ",".join(symbols), "mode": mode}  # every component reports the same mode
    if name == "execution":
        keys["venue_cancel_all_after_ms"] = duration_ms(cancel_all_after)
    if name in ("execution", "risk", "strategy"):
        keys["risk_limits"] = risk.model_dump_json(exclude_none=True)
    if name == "strategy":
        keys["strategies"] = json.dumps(strategies)
        if strategy_dir:
            keys["strategy_dir"] = strategy_dir
    return keys


def settings_keys(up: Any, name: str, rest_url: str, ws_url: str, ws_api_url: str = "") -> dict[str, Any]:
    """The settings `name` takes from the system `up` describes (not secrets: see `secret_keys`);
    `ws_api_url`, the venue's WebSocket API, is execution's (its orders go over it)."""
    keys = {"venue_rest_url": rest_url, "venue_ws_url": ws_url, "state_dir": str(up.state_dir()),
            **spec_keys(name, up.symbols, up.mode, up.risk, up.strategies,
                        up.spec.venue.cancelAllAfter if up.spec is not None else "60s", up.strategy_dir)}
    if name == "execution" and ws_api_url:
        keys["venue_ws_api_url"] = ws_api_url
    limits = getattr(up.args, "venue_order_limits", "")
    if name == "execution" and limits:  # "N_PER_10S,N_PER_MINUTE" (celeris up --venue-order-limits)
        per_10s, per_minute = limits.split(",")
        keys.update(venue_orders_per_10s=int(per_10s), venue_orders_per_minute=int(per_minute))
    return keys


def secret_keys(up: Any, name: str) -> dict[str, str]:
    """Secrets travel apart from the other settings (a command line is visible to every user). Every
    component gets the system's Control token (`up.control_token`, when it has one): its Control takes
    calls that present it, and it presents it to the others'."""
    control = {"control_token": token} if (token := getattr(up, "control_token", "")) else {}
    if name == "dashboard":  # it needs no venue credentials; its token can halt trading
        return {"token": up.token, **control}
    keys = {"venue_api_key": up.api_key, "venue_api_secret": up.api_secret, **control}
    if up.args.redis_url:
        keys["redis_url"] = up.args.redis_url
    if up.args.postgres_url:
        keys["postgres_url"] = up.args.postgres_url
    return keys


def settings_for(up: Any, name: str, rest_url: str, ws_url: str, ws_api_url: str = "", **extra: Any) -> Any:
    """The typed settings of `name`, validated exactly as a service process validates its own."""
    keys = {**settings_keys(up, name, rest_url, ws_url, ws_api_url), **secret_keys(up, name), **extra}
    return load_settings(SETTINGS[name], keys, environ={})
