"""The TradingSystem spec as a typed model, and what each component takes from it.

Owns reading a TradingSystem (the YAML `kubectl apply` takes, or its bare `spec`) into
`TradingSystemSpec`, validated strictly where a typo would be dangerous (a misspelt risk limit must not
be silently ignored), and the translations every assembly uses: `spec.risk` as exposure limits (integer
money units, parsed from decimal strings, never through a float), strategies as the strategy engine's
configuration. The CRD schema (k8s/crds/) is the contract; tests/unit/test_spec.py checks that both
agree on every field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from celeris.domain.exposure import ExposureLimits
from celeris.domain.values import money

DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
DURATION = re.compile(r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$")
"""A rollout stage's minDuration: hours, minutes, seconds in that order, each at most once (and not empty)."""
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""A Secret's name: a DNS-1123 subdomain (at most 253 characters)."""


def is_duration(text: str) -> bool:
    """The CRD's grammar of minDuration ("90s", "1h30m"; not "", "5s5s" or "30m1h")."""
    return text != "" and DURATION.fullmatch(text) is not None


def duration_ms(text: str) -> int:
    """"1h30m" -> 5_400_000 (exact integer milliseconds); outside the grammar raises."""
    match = DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"duration {text!r} is not of the form 1h30m15s")
    hours, minutes, seconds = (int(g[:-1]) if g else 0 for g in match.groups())
    return ((hours * 60 + minutes) * 60 + seconds) * 1000


def is_order_size(text: str) -> bool:
    """The CRD's grammar of orderSize: a decimal string, not zero."""
    return DECIMAL.fullmatch(text) is not None and any(c in "123456789" for c in text)


class SpecError(ValueError):
    """A TradingSystem that cannot be run, with the reason in one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VenueSpec(_Strict):
    kind: Literal["binance-usdm", "simulator"] = "binance-usdm"
    restUrl: str | None = Field(None, pattern=r"^https?://", max_length=256)
    wsUrl: str | None = Field(None, pattern=r"^wss?://", max_length=256)
    wsApiUrl: str | None = Field(None, pattern=r"^wss?://", max_length=256)
    """The venue's WebSocket API (Binance: wss://ws-fapi.binance.com/ws-fapi/v1): set, new orders go over it
    (REST while it is down); unset, over REST. For kind: simulator the bundled one's is used."""
    credentialsSecret: str | None = Field(None, max_length=253, pattern=SECRET_NAME.pattern)
    cancelAllAfter: str = Field("60s", max_length=32)
    """The dead-man's switch countdown (countdownCancelAll), "0s" = off."""

    @field_validator("cancelAllAfter")
    @classmethod
    def _a_duration(cls, text: str) -> str:
        duration_ms(text)
        return text

    @model_validator(mode="after")
    def _urls_for_a_real_venue(self) -> VenueSpec:
        if self.kind != "simulator" and not (self.restUrl and self.wsUrl):
            raise ValueError("a binance-usdm venue needs restUrl and wsUrl (kind: simulator runs the bundled one)")
        return self


class StrategySpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    type: str = Field(min_length=1, max_length=64)
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,20}$")
    orderSize: str = Field(pattern=DECIMAL.pattern)
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)

    def engine_config(self) -> dict[str, Any]:
        """The strategy engine's shape of the same thing."""
        return {"name": self.name, "type": self.type, "symbol": self.symbol, "order_size": self.orderSize,
                "params": dict(self.params), "enabled": self.enabled}


class RiskSpec(_Strict):
    """Hard limits. Every pre-trade check counts open and in-flight orders as if they filled."""

    maxPositionUsdt: str = Field("1000", pattern=DECIMAL.pattern)
    """Per symbol: |position + working orders on the same side + the new order| x price."""
    maxTotalExposureUsdt: str | None = Field(None, pattern=DECIMAL.pattern)
    maxOrderNotionalUsdt: str | None = Field(None, pattern=DECIMAL.pattern)
    maxOpenOrdersPerSymbol: int | None = Field(None, ge=1, le=200)
    priceBandBps: int | None = Field(None, ge=1, le=5000)
    """A limit price further than this from the mark/mid is refused (fat finger)."""
    maxDailyLossUsdt: str | None = Field(None, pattern=DECIMAL.pattern)
    maxDailyDrawdownPct: float = Field(2.0, gt=0, le=100)
    maxOrdersPerSecond: int = Field(10, ge=1, le=300)
    maxLeverage: int = Field(10, ge=1, le=125)

    def exposure_limits(self) -> ExposureLimits:
        return ExposureLimits(
            max_position_notional=money(self.maxPositionUsdt),
            max_total_notional=money(self.maxTotalExposureUsdt) if self.maxTotalExposureUsdt else 0,
            max_open_orders_per_symbol=self.maxOpenOrdersPerSymbol or 0,
            max_order_notional=money(self.maxOrderNotionalUsdt) if self.maxOrderNotionalUsdt else 0,
            price_band_bps=self.priceBandBps or 0,
            max_daily_loss=money(self.maxDailyLossUsdt) if self.maxDailyLossUsdt else 0,
        )

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def default_risk() -> RiskSpec:
    """The limits of a run without a TradingSystem (`celeris up`, `celeris backtest`): generous for the
    demo's sizes, never none, and the same in both so a backtest behaves as the paper run it stands for."""
    return RiskSpec(maxPositionUsdt="5000", maxOrdersPerSecond=50, maxLeverage=20)


class TradingSystemSpec(BaseModel):
    """`spec` of a TradingSystem. Operator-only sections (rollout, placement, resources, stores) are kept as
    given; the operator reads them."""

    model_config = ConfigDict(extra="forbid")

    image: str = ""
    venue: VenueSpec = Field(default_factory=lambda: VenueSpec(kind="simulator"))
    symbols: list[str] = Field(min_length=1, max_length=50)
    mode: Literal["observation", "simulation", "live"] | None = None
    topology: Literal["distributed", "colocated"] = "distributed"
    halted: bool = False
    approvedForLive: bool = False
    rollout: dict[str, Any] | None = None
    strategies: list[StrategySpec] = Field(default_factory=list, max_length=100)
    strategyDir: str | None = Field(None, min_length=1, max_length=1024)
    """A directory of strategy plugin files (*.py) the strategy engine loads besides the built-ins and the
    installed entry points. `celeris up`: relative to the spec file; a pod: an absolute path in the
    container (baked into the image, or strategyConfigMap mounted there)."""
    strategyConfigMap: str | None = Field(None, max_length=253, pattern=SECRET_NAME.pattern)
    """Kubernetes: a ConfigMap of plugin files (key = file name) the operator mounts read-only at
    strategyDir in the strategy engine's container."""
    risk: RiskSpec = Field(default_factory=RiskSpec)
    placement: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    stores: dict[str, Any] | None = None

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        for symbol in value:
            if not re.fullmatch(r"[A-Z0-9]{2,20}", symbol):
                raise ValueError(f"symbol {symbol!r} is not a venue symbol (A-Z, 0-9)")
        if len(set(value)) != len(value):
            raise ValueError("a symbol is listed twice")
        return value

    @model_validator(mode="after")
    def _strategies_fit(self) -> TradingSystemSpec:
        if self.strategyConfigMap and not self.strategyDir:
            raise ValueError("strategyConfigMap is mounted at strategyDir: set strategyDir too")
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            raise ValueError("two strategies share a name")
        for strategy in self.strategies:
            if strategy.symbol not in self.symbols:
                raise ValueError(f"strategy {strategy.name} trades {strategy.symbol}, which is not in symbols")
            if not is_order_size(strategy.orderSize):
                raise ValueError(f"strategy {strategy.name}: orderSize must be positive")
        return self


def parse_spec(document: Any) -> tuple[str, TradingSystemSpec]:
    """A TradingSystem object (apiVersion/kind/metadata/spec) or a bare spec -> (name, spec)."""
    if not isinstance(document, dict):
        raise SpecError("a TradingSystem is a mapping (apiVersion, kind, metadata, spec)")
    name = "celeris"
    if "spec" in document or "kind" in document:
        kind = document.get("kind")
        if kind != "TradingSystem":
            raise SpecError(f"kind is {kind!r}, not TradingSystem")
        name = str((document.get("metadata") or {}).get("name") or name)
        document = document.get("spec")
        if not isinstance(document, dict):
            raise SpecError("the TradingSystem has no spec")
    try:
        return name, TradingSystemSpec.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecError(problems) from None


def load_spec(path: str | Path) -> tuple[str, TradingSystemSpec]:
    """Read a TradingSystem YAML file (the first TradingSystem document in it)."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not YAML: {exc}") from None
    for document in documents:
        if isinstance(document, dict) and document.get("kind", "TradingSystem") == "TradingSystem":
            return parse_spec(document)
    raise SpecError(f"{path} holds no TradingSystem")
