"""The one protocol every engine implements, so that halt, mode and configure mean the same everywhere.

A component is what the operator and `celeris control` steer: market data, execution, the strategy
engine, the risk manager, the account monitor and the dashboard. The Control servicer
(celeris.runtime.control) drives one or several components through this protocol and nothing else, in a
service process (one component), in `celeris up --topology inproc` (all of them) and in a pod alike.

What each lever means, for every component:
- `set_mode(mode)`: trade (or not) against the venue `mode` names from now on; the mode table
  (celeris.domain.modes) has already accepted the change.
- `halt(reason, by, flatten)`: from now on the component originates nothing that increases exposure;
  what it has open is cancelled; `flatten` asks the component that holds positions to close them. Halts
  are idempotent: a repeated halt still reaches the component (a flatten asked the second time is done).
- `resume(by)`: lift the halt (recorded with who).
- `configure(config)`: apply a configuration document (the TradingSystem spec's `risk`, `strategies`, ...)
  whole or not at all: a component that cannot apply it raises ValueError and keeps the previous one.
  A component may also offer `validate(config)` (synchronous, changes nothing): the Control calls it on
  every component before any applies, so several components in one process refuse or apply together.
- `drain()`: stop taking new work ahead of a shutdown.
- `status()`: what the component reports about itself (string values: they travel as gRPC details).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from celeris.domain.modes import Mode


@runtime_checkable
class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def set_mode(self, mode: Mode) -> None: ...

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None: ...

    async def resume(self, requested_by: str) -> None: ...

    async def configure(self, config: dict[str, Any]) -> None: ...

    async def drain(self) -> None: ...

    def status(self) -> dict[str, str]: ...


class NoOrderLevers:
    """The levers of a component that originates no orders and trades no account (market data, the
    dashboard): mode, halt, resume, configure and drain are recorded by its Control and change nothing."""

    async def set_mode(self, mode: Mode) -> None:
        return None

    async def halt(self, reason: str, requested_by: str, flatten: bool) -> None:
        return None

    async def resume(self, requested_by: str) -> None:
        return None

    async def configure(self, config: dict[str, Any]) -> None:
        return None

    async def drain(self) -> None:
        return None
