"""Builds the risk manager from RiskSettings: policies, audit and trading flag in PostgreSQL/Redis when
configured (else in memory), the account it judges, the emergency stop's actions, its metrics and its
gRPC service. Ports: `paper_account` (the paper venue's account, judged in simulation mode), `actions`
(what the emergency stop does to execution) and `mode_of` (which account is being traded now)."""

from __future__ import annotations

from typing import Any, Callable

from celeris.assembly.ports import Built
from celeris.assembly.settings import RiskSettings
from celeris.assembly.wiring import Wiring
from celeris.domain.modes import Mode


def build_risk(settings: RiskSettings, w: Wiring, paper_account: Any, actions: Any,
               mode_of: Callable[[], Mode]) -> Built:
    from celeris.assembly.paper_account import ModeRouted
    from celeris.risk import adapters, servicer
    from celeris.risk.component import RiskComponent
    from celeris.risk.engine import (DEFAULT_POLICIES, MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskConfig,
                                     RiskEngine)
    from celeris.risk.metrics_export import RiskCollector

    flag: Any = adapters.RedisTradingFlag(w.redis) if w.redis is not None else MemoryFlag()
    policies: Any = adapters.PostgresPolicyStore(w.pool, DEFAULT_POLICIES) if w.pool is not None else MemoryPolicyStore()
    audit: Any = adapters.PostgresAudit(w.pool) if w.pool is not None else MemoryAudit()
    source: Any = adapters.VenueAccountSource(w.rest, w.instruments)
    if paper_account is not None:  # the account being traded: the paper one while in simulation mode
        source = ModeRouted(mode_of, paper_account, source)
    engine = RiskEngine(w.instruments, w.clock, source, policies, audit, flag, actions,
                        RiskConfig(settings.monitor_interval_s, settings.flatten_on_emergency))
    w.registry.register(RiskCollector(engine))
    spec = settings.risk_spec()
    component = RiskComponent(engine, Mode(settings.mode), spec.as_json() if spec is not None else None)
    return Built(component, [servicer.registrar(engine)], component.health, [], {"engine": engine})
