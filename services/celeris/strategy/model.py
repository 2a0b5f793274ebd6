"""What the strategy engine keeps per strategy: its configuration and its running state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from celeris.domain.signals import Strategy


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    type: str
    symbol: str
    order_size: str
    """Order size at full strength, a decimal string in the base asset ("0.001")."""
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass
class Runner:
    config: StrategyConfig
    strategy: Strategy
    enabled: bool = True
    disabled_reason: str = ""
    signals: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    """The longest run of errors of one callback not yet ended by a success of that same callback."""
    last_error: str = ""
    failing: dict[str, int] = field(default_factory=dict)
    """callback name -> its errors in a row: a strategy whose on_book always raises is disabled even though its
    other callbacks (often the SDK's empty defaults) succeed in between."""
    realized_pnl: int = 0
    context: Any = None
    """An SDK strategy's celeris.domain.sdk.StrategyContext (None for a signal strategy)."""
    started: bool = False
    """Whether the SDK strategy's on_start has run (at its first event, when an event loop runs)."""
    pending: list[tuple[str, Any]] = field(default_factory=list)
    draining: bool = False
