"""docs/configuration.md cannot drift from the code: every TradingSystem field (the spec model, and the CRD
for the sections the model keeps as given), every component setting, every `celeris up` flag and every
environment variable read outside the settings has a row, with the default the code has; and no row names
something that no longer exists.

The doc's tables are read by their first two columns: the name in backticks, the default in backticks
(`required` for a field without one, `none` for an unset optional one)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from celeris.assembly.plan import SETTINGS
from celeris.config.spec import TradingSystemSpec
from celeris.runtime.settings import ServiceSettings
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
CRD = ROOT / "k8s" / "crds" / "tradingsystems.celeris.dev.yaml"
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]*)`\s*\|")


def show(value: Any) -> str:
    """A default as the doc writes it."""
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, SecretStr):
        return '""'
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(exclude_none=True), separators=(", ", ": "))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(", ", ": "))
    return str(value)


def _model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _crd_fields(prefix: str, schema: dict[str, Any], out: dict[str, str]) -> None:
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        if prop.get("type") == "object" and "properties" in prop:
            _crd_fields(path, prop, out)
        elif prop.get("type") == "array" and "properties" in prop.get("items", {}):
            out[path] = show(prop.get("default"))
            _crd_fields(f"{path}[]", prop["items"], out)
        else:
            out[path] = show(prop["default"]) if "default" in prop else "none"


def spec_fields() -> dict[str, str]:
    """Every field of a TradingSystem's spec by dotted path -> its default: the model's, and the CRD's for
    the sections the model keeps as given (rollout, placement, resources, stores)."""
    crd = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    out: dict[str, str] = {}

    def walk(prefix: str, model: type[BaseModel], schema: dict[str, Any]) -> None:
        for name, field in model.model_fields.items():
            path, nested = f"{prefix}.{name}", _model(field.annotation)
            prop = schema["properties"][name]
            if nested is not None and get_origin(field.annotation) is list:
                out[path] = show(field.get_default(call_default_factory=True))
                walk(f"{path}[]", nested, prop["items"])
            elif nested is not None:
                walk(path, nested, prop)
            elif "dict" in str(field.annotation) and "properties" in prop:  # kept as given: the CRD's fields
                _crd_fields(path, prop, out)
            else:
                out[path] = show(field.get_default(call_default_factory=True))

    walk("spec", TradingSystemSpec, crd)
    return out


def settings_fields() -> dict[str, dict[str, str]]:
    """Section -> setting key -> default: what every component takes, then each component's own keys."""
    shared = ServiceSettings.model_fields
    out = {"every component": {n: show(f.get_default(call_default_factory=True)) for n, f in shared.items()}}
    for component, cls in SETTINGS.items():
        out[f"celeris {component} run"] = {n: show(f.get_default(call_default_factory=True))
                                           for n, f in cls.model_fields.items() if n not in shared}
    return out


def up_flags(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from celeris.cli import build_parser

    for name in ("CELERIS_VENUE_API_KEY", "CELERIS_VENUE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)  # they are the defaults of --api-key and --api-secret
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    up = sub.choices["up"]
    return {max(a.option_strings, key=len): show(a.default) for a in up._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)}


def environment() -> dict[str, str]:
    """Variables read directly (not settings), by `celeris up` and by the operator -> their defaults."""
    out: dict[str, str] = {}
    for path in (ROOT / "services/celeris/commands/up.py", *sorted((ROOT / "operator/celeris_operator").glob("*.py"))):
        for name, default in re.findall(r'os\.environ\.get\("(CELERIS_[A-Z0-9_]+)"(?:, "([^"]*)")?\)', path.read_text()):
            out[name] = show(default) if default or f'"{name}", ""' in path.read_text() else "none"
    return out


def doc_sections() -> dict[str, dict[str, str]]:
    """Heading (lower case, backticks dropped) -> name -> default, from every table row under it."""
    out: dict[str, dict[str, str]] = {}
    section = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip().replace("`", "").lower()
            continue
        match = ROW.match(line)
        if match:
            rows = out.setdefault(section, {})
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice under {section!r}"
            rows[match.group(1)] = match.group(2)
    return out


def _compare(what: str, documented: dict[str, str], actual: dict[str, str], optional: set[str] = frozenset()) -> None:
    missing = sorted(set(actual) - set(documented))
    stale = sorted(set(documented) - set(actual) - set(optional))
    wrong = sorted(f"{n}: doc {documented[n]}, code {actual[n]}" for n in set(actual) & set(documented)
                   if documented[n] != actual[n])
    assert (missing, stale, wrong) == ([], [], []), f"{what}: missing {missing}, no longer exist {stale}, defaults {wrong}"


def test_every_tradingsystem_field_is_documented_with_its_default():
    sections = doc_sections()
    containers = {"spec.venue", "spec.risk", "spec.rollout", "spec.rollout.gates", "spec.placement", "spec.resources",
                  "spec.stores"}  # a row of their own is welcome, not required: their fields have rows
    _compare("TradingSystem", sections.get("tradingsystem spec", {}), spec_fields(), containers)
    assert "spec.strategyDir" in spec_fields()


def test_every_setting_is_documented_with_its_default():
    sections = doc_sections()
    for section, fields in settings_fields().items():
        _compare(section, sections.get(section, {}), fields)


def test_every_flag_of_celeris_up_and_every_environment_variable_is_documented(monkeypatch):
    sections = doc_sections()
    _compare("celeris up", sections.get("celeris up flags", {}), up_flags(monkeypatch))
    assert "--strategy-dir" in up_flags(monkeypatch)
    assert environment()
    _compare("environment", sections.get("environment", {}), environment())
