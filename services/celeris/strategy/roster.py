"""The strategy engine's roster: adding, enabling, disabling, reloading and reconfiguring strategies
(built-in or plugins, hot reload of changed plugin files), and calling them guarded: an exception is
logged and counted, `max_consecutive_errors` in a row disable the strategy, the others keep running.
A strategy that leaves (disabled, reloaded, removed) has its orders cancelled.

A mixin of StrategyEngine: the state it works on (runners, registry, stats) is the engine's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celeris.domain import sdk
from celeris.domain.values import Side
from celeris.strategy.model import Runner, StrategyConfig


log = logging.getLogger("celeris.strategy.engine")


class StrategyRoster:
    def add(self, config: StrategyConfig) -> Runner:
        if config.symbol not in self.instruments:
            raise ValueError(f"strategy {config.name}: unknown symbol {config.symbol}")
        if config.name in self.runners:
            raise ValueError(f"strategy name {config.name!r} is used twice")
        self.instruments[config.symbol].qty(config.order_size)  # refuses an off-step size now, not later
        strategy = self.registry.create(config.type)
        strategy.initialize({"symbol": config.symbol, "order_size": config.order_size, "params": dict(config.params)})
        runner = Runner(config, strategy, enabled=config.enabled)
        if isinstance(strategy, sdk.Strategy):
            self._bind_sdk(runner)
        self.runners[config.name] = runner
        return runner

    def enable(self, name: str) -> Runner:
        runner = self.runners[name]
        runner.enabled, runner.disabled_reason, runner.consecutive_errors = True, "", 0
        runner.failing.clear()
        if runner.context is not None:
            runner.started = False  # an SDK strategy starts over: its on_start runs at the next event
        return runner

    def disable(self, name: str, reason: str = "disabled by request") -> Runner:
        runner = self.runners[name]
        runner.enabled, runner.disabled_reason = False, reason
        self._owner_gone(name, "canceled_owner_gone")
        return runner

    @property
    def quotes(self) -> dict[tuple[str, str, Side], str]:
        """(owner, symbol, side) -> client order id of each working quote."""
        return self.owned.quotes

    def reload(self, name: str) -> Runner:
        """A fresh instance of the strategy's (possibly new) class; state handed over if it wants it."""
        runner = self.runners[name]
        source = self.registry.sources.get(runner.config.type)
        if source is not None and source.path is not None:
            self.registry.reload(source.path)
        old_state = dict(runner.strategy.get_state())
        fresh = self.registry.create(runner.config.type)
        fresh.initialize({"symbol": runner.config.symbol, "order_size": runner.config.order_size,
                          "params": dict(runner.config.params)})
        restore = getattr(fresh, "restore", None)
        runner.consecutive_errors = 0
        runner.failing.clear()
        if isinstance(fresh, sdk.Strategy):
            # An SDK strategy's orders stay its own: the fresh instance gets the same context (its working
            # orders in self.orders(), its position and PnL); its timers and unsent intents start over, and
            # its on_start runs again at the next event.
            context = runner.context
            if context is not None:
                context.intents.clear()
                context.timers.clear()
            else:  # a signal strategy became an SDK one: the signal orders go
                self._cancel_records(self.owned.owned_by(name), "canceled_owner_gone", "reload")
            runner.strategy, runner.started, runner.pending = fresh, False, []
            self._bind_sdk(runner, context)
            if callable(restore):
                restore(old_state)
            log.info("strategy %s reloaded (%s, its %d working orders kept)", name,
                     "state handed over" if callable(restore) else "state reset", len(runner.context.orders))
            return runner
        if callable(restore):
            restore(old_state)
        runner.strategy = fresh
        # The fresh instance does not know the old one's orders: they go (hot reload re-quotes).
        self._cancel_records(self.owned.owned_by(name), "canceled_owner_gone", "reload")
        if runner.context is not None:  # an SDK strategy became a signal one: its orders go too
            self._stop_algos_of(name)
            runner.context = None
        log.info("strategy %s reloaded (%s)", name, "state handed over" if callable(restore) else "state reset")
        return runner

    def check_configs(self, configs: list[StrategyConfig]) -> None:
        """Raise (ValueError or KeyError) if any of `configs` could not be applied: a name twice, an unknown
        symbol, an off-step size, an unknown type or parameters its strategy refuses. Changes nothing."""
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError("a strategy name is used twice")
        for config in configs:
            if config.symbol not in self.instruments:
                raise ValueError(f"strategy {config.name}: no instrument {config.symbol}")
            self.instruments[config.symbol].qty(config.order_size)
            trial = self.registry.create(config.type)  # a throwaway instance: the type exists, the params parse
            trial.initialize({"symbol": config.symbol, "order_size": config.order_size, "params": dict(config.params)})

    def reconfigure(self, configs: list[StrategyConfig]) -> list[str]:
        """Apply changed parameters, sizes or enablement of configured strategies (no restart); returns
        the names that changed. New names are added; a strategy missing from `configs` is disabled."""
        self.check_configs(configs)  # all or nothing: everything refusable is refused before anything changes
        changed = []
        wanted = {c.name: c for c in configs}
        for name, config in wanted.items():
            runner = self.runners.get(name)
            if runner is None:
                self.add(config)
                changed.append(name)
                continue
            if config == runner.config:
                continue
            runner.config = config
            self.reload(name)
            runner.enabled = config.enabled
            changed.append(name)
        for name, runner in self.runners.items():
            if name not in wanted and runner.enabled:
                self.disable(name, "removed from the configuration")
                changed.append(name)
        return changed

    def reload_changed(self) -> list[str]:
        """Reload every strategy whose plugin file changed on disk (hot reload)."""
        reloaded = []
        for path in self.registry.changed_files():
            types = self.registry.reload(path)
            for runner in self.runners.values():
                if runner.config.type in types:
                    try:
                        self.reload(runner.config.name)
                    except Exception as exc:  # e.g. its new Params refuse the running configuration
                        # The running instance stays (its orders, its state); the next edit is tried again.
                        runner.errors += 1
                        runner.last_error = f"reload of {path.name}: {exc}"
                        self.stats["errors"] += 1
                        log.error("strategy %s not reloaded, the running version stays: %s", runner.config.name, exc)
                        continue
                    reloaded.append(runner.config.name)
        return reloaded

    async def watch_plugins(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.reload_changed()

    def _call(self, runner: Runner, method: str, *args: Any) -> Any:
        try:
            result = getattr(runner.strategy, method)(*args)
        except (Exception, SystemExit) as exc:  # a strategy's sys.exit() ends the strategy, not the process
            self._strategy_error(runner, f"{method}: {exc!r}", method)
            return None
        if runner.failing:
            self._succeeded(runner, method)
        return result

    @staticmethod
    def _succeeded(runner: Runner, what: str) -> None:
        """`what` of `runner` worked: its run of errors ends (another callback's run does not)."""
        if runner.failing.pop(what, None) is not None:
            runner.consecutive_errors = max(runner.failing.values(), default=0)

    def _strategy_error(self, runner: Runner, what: str, method: str = "(engine)") -> None:
        """An error of `runner` in `method` (a callback, or what the engine did on its behalf): counted;
        `max_consecutive_errors` in a row in the same callback disable the strategy."""
        runner.errors += 1
        runner.last_error = what
        runner.failing[method] = runner.failing.get(method, 0) + 1
        runner.consecutive_errors = max(runner.failing.values())
        self.stats["errors"] += 1
        log.error("strategy %s failed: %s", runner.config.name, what)
        if runner.consecutive_errors >= self.max_consecutive_errors:
            self.disable(runner.config.name, f"{runner.consecutive_errors} consecutive errors, last: {what}")

    # -- market data -----------------------------------------------------------------------------
