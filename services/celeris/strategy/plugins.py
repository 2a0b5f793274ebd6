"""Finding, loading and hot-reloading strategy plugins (FR-SE-001, NFR-SE-002).

A strategy is a class implementing celeris.domain.signals.Strategy. It can come from the built-ins, from
any installed package's `celeris.strategies` entry point, or from a directory of .py files (each defines
classes with a `name` attribute; the file's classes are registered under their `name`). Directory plugins
are reloaded when their file changes: the new class replaces the old, and if it has
`restore(state)` it receives the old instance's get_state() (the strategy chooses handover or reset).
A type that none of the three provides is refused with `UnknownStrategyType`, one line naming every type
that is known and where it comes from (and the plugin files that failed to load, the usual reason).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from celeris.domain import sdk
from celeris.domain.signals import Strategy
from celeris.strategies import BUILTIN

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "celeris.strategies"


class UnknownStrategyType(KeyError, ValueError):
    """A strategy type no source provides. A KeyError (a lookup that failed) and a ValueError (a
    configuration that cannot be applied), whose str() is its one-line message, unquoted."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class PluginSource:
    kind: str  # builtin | entry_point | file
    path: Path | None = None
    mtime_ns: int = 0


def _load(spec: str) -> type:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _one_line(exc: BaseException) -> str:
    """What failed in a plugin file, for one line: a syntax error by its line, anything else by its text."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def is_strategy_class(obj: Any) -> bool:
    """A signal strategy (celeris.domain.signals.Strategy) or an SDK one (a named celeris.domain.sdk.Strategy)."""
    if inspect.isclass(obj) and issubclass(obj, sdk.Strategy):
        return obj is not sdk.Strategy and isinstance(obj.name, str) and bool(obj.name)
    return (inspect.isclass(obj) and isinstance(getattr(obj, "name", None), str)
            and all(callable(getattr(obj, m, None)) for m in
                    ("initialize", "on_market_data", "on_order_fill", "on_position_update", "get_state")))


class PluginRegistry:
    def __init__(self, directory: Path | None = None, report_failures: bool = True) -> None:
        """`report_failures=False`: a file that fails to load is only recorded (load_errors), for a caller
        that reports it itself (in a refusal that names it, or a log line once its check passed)."""
        self.directory = directory
        self.report_failures = report_failures
        self.classes: dict[str, type] = {}
        self.sources: dict[str, PluginSource] = {}
        self.load_errors: dict[str, str] = {}
        self.conflicts: dict[str, str] = {}
        """Type names two sources define (-> which): refused when configured, never one picked silently."""
        self.seen_mtime: dict[Path, int] = {}
        for name, spec in BUILTIN.items():
            self.classes[name] = _load(spec)
            self.sources[name] = PluginSource("builtin")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = ep.load()
            except (Exception, SystemExit) as exc:  # a broken plugin must not stop the others
                self.load_errors[f"entry point {ep.name}"] = _one_line(exc)
                continue
            if is_strategy_class(cls):
                if ep.name in self.classes:
                    self.conflicts[ep.name] = f"entry point {ep.name} and the {self._where(ep.name)}"
                    continue
                self.classes[ep.name] = cls
                self.sources[ep.name] = PluginSource("entry_point")
        if directory is not None:
            for path in sorted(directory.glob("*.py")):
                self._load_file(path)
        self.report_failures = True  # reloads always log

    def _load_file(self, path: Path) -> list[str]:
        self.seen_mtime[path] = path.stat().st_mtime_ns
        module_name = f"celeris_strategy_plugin_{path.stem}_{path.stat().st_mtime_ns}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # a plugin that calls sys.exit() at import must not stop us
            self.load_errors[str(path)] = _one_line(exc)
            if self.report_failures:
                log.error("strategy plugin %s failed to load: %s", path.name, self.load_errors[str(path)])
            return []
        self.load_errors.pop(str(path), None)
        names: list[str] = []
        for _, obj in inspect.getmembers(module, is_strategy_class):
            if obj.__module__ != module_name:
                continue  # imported, not defined here
            source = self.sources.get(obj.name)
            if obj.name in names or (source is not None and source.path != path):
                where = f"two classes of {path.name}" if obj.name in names else f"{path.name} and the {self._where(obj.name)}"
                self.conflicts[obj.name] = where
                message = f"defines strategy type {obj.name!r}, already defined ({where})"
                self.load_errors[str(path)] = message
                if self.report_failures:
                    log.error("strategy plugin %s %s: not loaded", path.name, message)
                continue
            self.conflicts.pop(obj.name, None)
            self.classes[obj.name] = obj
            self.sources[obj.name] = PluginSource("file", path, path.stat().st_mtime_ns)
            names.append(obj.name)
        return names

    def _where(self, type_name: str) -> str:
        source = self.sources[type_name]
        return {"builtin": "built-in strategy", "entry_point": "entry point"}.get(
            source.kind, f"plugin file {source.path.name if source.path else '?'}")

    def changed_files(self) -> list[Path]:
        """Plugin files that changed (or appeared) since their last load attempt."""
        if self.directory is None:
            return []
        return [p for p in sorted(self.directory.glob("*.py")) if self.seen_mtime.get(p) != p.stat().st_mtime_ns]

    def reload(self, path: Path) -> list[str]:
        """Load a changed file again; returns the strategy names it defines (empty if it failed)."""
        return self._load_file(path)

    def register(self, type_name: str, cls: type) -> None:
        """A strategy class given in code (an embedding application, a test)."""
        if not is_strategy_class(cls):
            raise TypeError(f"{cls!r} does not implement the Strategy protocol")
        self.classes[type_name] = cls
        self.sources[type_name] = PluginSource("builtin")

    def known(self) -> str:
        """Every known type by source, for a person: "built-in: a, b; entry points: c; /plugins: d"."""
        groups: dict[str, list[str]] = {"built-in": [], "entry points": []}
        for name in sorted(self.classes):
            source = self.sources[name]
            label = {"builtin": "built-in", "entry_point": "entry points"}.get(source.kind, str(self.directory))
            groups.setdefault(label, []).append(name)
        if self.directory is not None and str(self.directory) not in groups:
            groups[str(self.directory)] = ["none"]
        return "; ".join(f"{label}: {', '.join(names)}" for label, names in groups.items() if names)

    def unknown(self, type_name: str) -> UnknownStrategyType:
        failed = "".join(f"; {where} failed to load ({error[:120]})"
                         for where, error in sorted(self.load_errors.items()))
        return UnknownStrategyType(f"unknown strategy type {type_name!r} (known: {self.known()}){failed}")

    def refuse_unknown(self, type_names: list[str]) -> None:
        """Raise UnknownStrategyType for the first of `type_names` no source provides."""
        for type_name in type_names:
            if type_name in self.conflicts:
                raise UnknownStrategyType(f"strategy type {type_name!r} is defined twice ({self.conflicts[type_name]}): "
                                          f"rename one (its class's `name`)")
            if type_name not in self.classes:
                raise self.unknown(type_name)

    def create(self, type_name: str) -> Strategy | sdk.Strategy:
        self.refuse_unknown([type_name])
        cls = self.classes.get(type_name)
        if cls is None:
            raise self.unknown(type_name)
        return cls()
