"""Settings: read once at the edge from environment and flags, validated strictly, secrets redacted.

Owns `ServiceSettings` (what every service needs) and `load_settings`, which merges CELERIS_* environment
variables with `key=value` flag overrides, rejects unknown keys from either source, freezes the result
and registers every secret with the log redactor so it can never be printed.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Mapping, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from celeris.runtime import logs

ENV_PREFIX = "CELERIS_"
OPERATOR_ENV_PREFIX = "CELERIS_OPERATOR_"
FOREIGN_ENV_PREFIXES = (OPERATOR_ENV_PREFIX, "CELERIS_SIM_", "CELERIS_TEST_")


class SettingsError(ValueError):
    """Settings that cannot be used; the message says which key and why."""


class ServiceSettings(BaseSettings):
    """Settings shared by every Celeris service. Units are in the field names."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True,
                                      use_attribute_docstrings=True)

    component: str = "celeris"
    """Name used in logs, metrics and GetStatus."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(50051, ge=0, le=65535)
    """0 picks a free port (tests)."""
    metrics_port: int = Field(9090, ge=0, le=65535)
    mode: Literal["observation", "simulation", "live"] = "observation"
    """Execution mode at start; the operator changes it at run time through Control.SetMode."""
    drain_timeout_ms: int = Field(10_000, ge=0, le=600_000)
    """How long SIGTERM waits for in-flight work before the server stops."""
    symbols: tuple[str, ...] = ("BTCUSDT",)
    venue_rest_url: str = "https://fapi.binance.com"
    venue_ws_url: str = "wss://fstream.binance.com"
    venue_api_key: SecretStr = SecretStr("")
    venue_api_secret: SecretStr = SecretStr("")
    redis_url: SecretStr = SecretStr("")
    """Empty = in-memory store."""
    postgres_url: SecretStr = SecretStr("")
    risk_limits: str = ""
    """The TradingSystem's `spec.risk` as JSON (every component applies the same limits); empty = defaults."""
    state_dir: str = ""
    """Where a halt is kept across restarts when there is no Redis (empty = in memory only)."""
    control_token: SecretStr = SecretStr("")
    """Bearer token every Control call must present (`authorization: Bearer <token>` metadata); also sent
    by this component's own calls to other components' Control. Empty = Control is open (a laptop)."""
    desired_state: str = ""
    """Path of the desired-state document (the operator mounts /etc/celeris/desired/desired.json): mode,
    halt and configuration applied at boot before anything is served; it wins over `mode`, `risk_limits`
    and `strategies`. A named file that cannot be used stops the process (celeris.runtime.desired_state).
    Empty = start from these settings alone."""

    @field_validator("risk_limits")
    @classmethod
    def _check_risk(cls, value: str) -> str:
        if value:
            from celeris.config.spec import RiskSpec

            RiskSpec.model_validate_json(value)
        return value

    def risk_spec(self) -> Any:
        """`risk_limits` as the typed RiskSpec, or None when not configured."""
        if not self.risk_limits:
            return None
        from celeris.config.spec import RiskSpec

        return RiskSpec.model_validate_json(self.risk_limits)

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s.strip().upper() for s in value.split(",") if s.strip()]
        return value

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not symbol.isalnum() or not symbol.isupper():
                raise ValueError(f"symbol {symbol!r} must be upper-case letters and digits, e.g. BTCUSDT")
        if not value:
            raise ValueError("at least one symbol is required")
        return value

    def redacted(self) -> dict[str, Any]:
        """Every setting, with secrets masked (keys keep their first 4 characters)."""
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                out[name] = redact_secret(name, value.get_secret_value())
            else:
                out[name] = value
        return out

    def secrets(self) -> list[str]:
        """Every secret value, and the password inside each secret URL, for the log redactor."""
        out = []
        for _, value in self:
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
                password = urlsplit(value.get_secret_value()).password
                if password:
                    out.append(password)
        return out


def redact_secret(name: str, secret: str) -> str:
    if not secret:
        return ""
    if name.endswith("_url"):
        parts = urlsplit(secret)
        if parts.password:
            netloc = f"{parts.username}:****@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return secret
    return "****"  # not even a prefix: a few characters of a key narrow the search for the rest


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> S:
    """Build settings from CELERIS_* variables and flag overrides (flags win); unknown keys fail."""
    environ = os.environ if environ is None else environ
    fields = set(cls.model_fields)
    values: dict[str, Any] = {}
    for key, value in environ.items():
        # CELERIS_OPERATOR_* belongs to the operator, CELERIS_SIM_* to the simulator, CELERIS_TEST_* to the tests:
        # they may share a shell or a pod spec with a component.
        if key.startswith(ENV_PREFIX) and not key.startswith(FOREIGN_ENV_PREFIXES):
            name = key[len(ENV_PREFIX):].lower()
            if name not in fields:
                raise SettingsError(f"unknown setting {key} (known: {', '.join(sorted(fields))})")
            values[name] = value
    for key, value in (overrides or {}).items():
        name = key.replace("-", "_").lower()
        if name not in fields:
            raise SettingsError(f"unknown setting {key!r} (known: {', '.join(sorted(fields))})")
        values[name] = value
    try:
        # Only explicit values: the environment was read above, so the model must not read it again.
        settings = cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None
    logs.register_secrets(settings.secrets())
    return settings


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`key=value` flag arguments -> dict; a pair without '=' is an error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SettingsError(f"expected key=value, got {pair!r}")
        out[key.strip()] = value
    return out
