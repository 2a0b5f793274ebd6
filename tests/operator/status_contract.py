"""TradingSystem objects in each state of the operator's status contract, and the two readers GitOps
tools put on them: Argo CD's health check (k8s/argocd/health.lua, run in a Lua 5.1 sandbox shaped like
Argo CD's) and kstatus (sigs.k8s.io/cli-utils' status.Compute, through tools/kstatus).

The objects are written by hand from the contract (docs/deployment.md, "GitOps"); a test that drives
the real operator can pass the objects it reads back to `argocd_health` and `kstatus` the same way."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = ROOT / "k8s/argocd/health.lua"
ARGOCD_CM = ROOT / "k8s/argocd/argocd-cm.yaml"
ARGOCD_HEALTH_KEY = "resource.customizations.health.celeris.dev_TradingSystem"
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

T0 = "2026-11-30T09:00:00Z"
T1 = "2026-11-30T10:00:00Z"


def cond(type_: str, status: str, reason: str, message: str = "", generation: int = 1, at: str = T1) -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": at, "observedGeneration": generation}


def components(mode: str = "live", halted: bool = False, ready: bool = True, generation: int = 1,
               **override: dict) -> dict:
    names = ("marketdata", "strategy", "execution", "risk", "account", "dashboard")
    out = {n: {"mode": mode, "halted": halted, "ready": ready, "configGeneration": generation} for n in names}
    for name, fields in override.items():
        out[name] = {**out[name], **fields}
    return out


def ts(generation: int = 1, status: dict | None = None, halted: bool = False, **meta: Any) -> dict:
    obj: dict[str, Any] = {
        "apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem",
        "metadata": {"name": "btc-perp", "namespace": "trading", "uid": "0f1e2d3c", "generation": generation,
                     "creationTimestamp": T0, **meta},
        "spec": {"image": "celeris:0.1.0", "mode": "live", "halted": halted, "symbols": ["BTCUSDT"],
                 "venue": {"kind": "binance-usdm", "restUrl": "https://x", "wsUrl": "wss://x",
                           "credentialsSecret": "binance-api"},
                 "rollout": {"stages": [{"mode": "observation", "minDuration": "2h"},
                                        {"mode": "simulation", "minDuration": "24h"}, {"mode": "live"}]}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def status(generation: int, mode: str, phase: str, conditions: list[dict], comps: dict | None = None) -> dict:
    return {"observedGeneration": generation, "mode": mode, "phase": phase, "conditions": conditions,
            "components": comps if comps is not None else components(mode, generation=generation)}


def progressing_pair(status_: str, reason: str, message: str, g: int) -> list[dict]:
    """Progressing and its mirror Reconciling (the name kstatus reads)."""
    return [cond("Progressing", status_, reason, message, g), cond("Reconciling", status_, reason, message, g)]


def settled(g: int) -> list[dict]:
    return [cond("Degraded", "False", "AllComponentsReady", "", g), cond("Stalled", "False", "NotStalled", "", g),
            cond("Halted", "False", "Trading", "", g)]


@dataclass(frozen=True)
class State:
    name: str
    obj: dict
    argocd: str            # what health.lua must answer
    argocd_message: str    # a part of its message
    kstatus: str           # what status.Compute answers
    note: str = ""


def _states() -> list[State]:
    s: list[State] = []
    s.append(State("created, no status yet", ts(), "Progressing", "Waiting for the operator", "Current",
                   "kstatus: no status.observedGeneration and no conditions -> the generic rules have nothing, "
                   "so an unknown kind is Current"))
    s.append(State("status without observedGeneration", ts(status={"phase": "Progressing"}), "Progressing",
                   "Waiting for the operator", "Current", "kstatus skips the generation check without the field"))
    s.append(State("new generation not yet observed", ts(4, status(3, "live", "Running", [
        cond("Ready", "True", "AllComponentsReady", "all components ready in live", 3),
        *progressing_pair("False", "RolloutComplete", "at target mode live", 3), *settled(3)])),
        "Progressing", "generation 4 (observed 3)", "InProgress"))
    s.append(State("applying a new generation", ts(5, status(5, "live", "Progressing", [
        cond("Ready", "False", "ConfigurationPending", "execution reports configuration generation 4, want 5", 5),
        *progressing_pair("True", "ApplyingGeneration", "pushing configuration generation 5", 5), *settled(5)],
        components("live", generation=4))), "Progressing", "pushing configuration generation 5", "InProgress"))
    s.append(State("soaking a stage", ts(2, status(2, "observation", "Progressing", [
        cond("Ready", "False", "RolloutInProgress", "in observation, target live", 2),
        *progressing_pair("True", "StageSoaking", "observation for 2h (minDuration), 1h10m left", 2),
        *settled(2)], components("observation", generation=2))), "Progressing", "minDuration", "InProgress"))
    s.append(State("waiting for approval", ts(2, status(2, "simulation", "Progressing", [
        cond("Ready", "False", "RolloutInProgress", "in simulation, target live", 2),
        *progressing_pair("True", "AwaitingApproval", "gates pass; live needs approvedForLive", 2),
        *settled(2)], components("simulation", generation=2))), "Progressing", "approvedForLive", "InProgress",
        "waiting for a person, but not stuck: the approval is a commit"))
    s.append(State("rolling an image", ts(3, status(3, "live", "Progressing", [
        cond("Ready", "False", "ImageRollout", "rolling celeris:0.2.0: 3/6 components", 3),
        *progressing_pair("True", "ImageRollout", "rolling celeris:0.2.0: 3/6 components", 3), *settled(3)],
        components("live", generation=3))), "Progressing", "3/6", "InProgress"))
    s.append(State("ready at target", ts(3, status(3, "live", "Running", [
        cond("Ready", "True", "AllComponentsReady", "all components ready in live", 3),
        *progressing_pair("False", "RolloutComplete", "at target mode live", 3), *settled(3)],
        components("live", generation=3))), "Healthy", "all components ready", "Current"))
    s.append(State("component not ready", ts(3, status(3, "live", "Degraded", [
        cond("Ready", "False", "ComponentNotReady", "execution not ready", 3),
        *progressing_pair("False", "RolloutComplete", "at target mode live", 3),
        cond("Degraded", "True", "ComponentNotReady", "execution not ready", 3),
        cond("Stalled", "False", "NotStalled", "", 3), cond("Halted", "False", "Trading", "", 3)],
        components("live", generation=3, execution={"ready": False}))), "Degraded", "execution not ready",
        "InProgress", "kstatus has no Degraded: Ready=False reads as InProgress (a Flux wait runs to its timeout)"))
    s.append(State("degraded and ready (drift not corrected)", ts(3, status(3, "live", "Degraded", [
        cond("Ready", "True", "AllComponentsReady", "all components ready in live", 3),
        *progressing_pair("False", "RolloutComplete", "at target mode live", 3),
        cond("Degraded", "True", "DriftNotCorrected", "Service btc-perp-risk: patch refused", 3),
        cond("Stalled", "False", "NotStalled", "", 3), cond("Halted", "False", "Trading", "", 3)],
        components("live", generation=3))), "Degraded", "patch refused", "Current",
        "kstatus ignores Degraded: with Ready=True it is Current"))
    s.append(State("rollout aborted by a demotion", ts(3, status(3, "simulation", "Aborted", [
        cond("Ready", "False", "RolloutAborted", "demoted to simulation: reconciliation mismatch", 3),
        *progressing_pair("False", "RolloutAborted", "demoted to simulation: reconciliation mismatch", 3),
        cond("Degraded", "True", "Demoted", "demoted to simulation: reconciliation mismatch", 3),
        cond("Stalled", "True", "RolloutAborted",
             "demoted to simulation (reconciliation mismatch): a new approval, a new revision or "
             "celeris.dev/retry is needed", 3),
        cond("Halted", "False", "Trading", "", 3)], components("simulation", generation=3))),
        "Degraded", "celeris.dev/retry", "Failed"))
    s.append(State("configuration refused (observedGeneration advanced)", ts(6, status(6, "live", "Degraded", [
        cond("Ready", "False", "ConfigurationRefused", "strategy refused generation 6: unknown strategy type", 6),
        *progressing_pair("False", "ConfigurationRefused", "strategy refused generation 6", 6),
        cond("Degraded", "True", "ConfigurationRefused", "strategy refused generation 6", 6),
        cond("Stalled", "True", "ConfigurationRefused", "strategy refused generation 6: unknown strategy type", 6),
        cond("Halted", "False", "Trading", "", 6)], components("live", generation=5))),
        "Degraded", "unknown strategy type", "Failed"))
    s.append(State("configuration refused (observedGeneration kept at the last applied)",
                   ts(6, status(5, "live", "Degraded", [
                       cond("Ready", "False", "ConfigurationRefused", "strategy refused generation 6", 6),
                       *progressing_pair("False", "ConfigurationRefused", "strategy refused generation 6", 6),
                       cond("Degraded", "True", "ConfigurationRefused", "strategy refused generation 6", 6),
                       cond("Stalled", "True", "ConfigurationRefused",
                            "strategy refused generation 6: unknown strategy type", 6),
                       cond("Halted", "False", "Trading", "", 5)], components("live", generation=5))),
                   "Degraded", "unknown strategy type", "InProgress",
                   "kstatus compares observedGeneration first: a refused generation that is never 'observed' "
                   "stays InProgress forever, never Failed"))
    s.append(State("Stalled and Reconciling both True, Reconciling listed first", ts(3, status(3, "live", "Aborted", [
        *progressing_pair("True", "Promoting", "promoting to live", 3),
        cond("Stalled", "True", "RolloutAborted", "demoted: reconciliation mismatch", 3)])),
        "Degraded", "demoted", "InProgress", "kstatus takes the first of Reconciling/Stalled that is True"))
    s.append(State("halt requested, components not yet halted", ts(7, status(7, "live", "Progressing", [
        cond("Ready", "False", "HaltPending", "execution not yet halted", 7),
        *progressing_pair("True", "Halting", "halting 4/6 components", 7),
        cond("Degraded", "False", "AllComponentsReady", "", 7), cond("Stalled", "False", "NotStalled", "", 7),
        cond("Halted", "False", "HaltPending", "4/6 components halted", 7)],
        components("live", halted=True, generation=7, execution={"halted": False})), halted=True),
        "Suspended", "Halting (spec.halted): 4/6", "InProgress"))
    s.append(State("halted by spec.halted", ts(7, status(7, "live", "Halted", [
        cond("Ready", "True", "AllComponentsReady", "all components halted as asked", 7),
        *progressing_pair("False", "RolloutComplete", "at target mode live", 7),
        cond("Degraded", "False", "AllComponentsReady", "", 7), cond("Stalled", "False", "NotStalled", "", 7),
        cond("Halted", "True", "SpecHalted", "halted by spec.halted", 7)],
        components("live", halted=True, generation=7)), halted=True), "Suspended", "spec.halted", "Current"))
    s.append(State("emergency halt by a component", ts(3, status(3, "live", "Halted", [
        cond("Ready", "False", "ComponentHalted", "risk halted trading: max daily drawdown", 3),
        *progressing_pair("False", "RolloutComplete", "at target mode live", 3),
        cond("Degraded", "False", "AllComponentsReady", "", 3), cond("Stalled", "False", "NotStalled", "", 3),
        cond("Halted", "True", "EmergencyHalt", "risk halted trading: max daily drawdown", 3)],
        components("live", halted=True, generation=3))), "Suspended", "max daily drawdown", "InProgress",
        "kstatus has no Halted: Ready=False reads as InProgress"))
    s.append(State("ready unknown", ts(2, status(2, "observation", "Progressing", [
        cond("Ready", "Unknown", "ComponentsUnreachable", "no answer from execution's Control", 2)])),
        "Progressing", "no answer", "InProgress"))
    return s


STATES = _states()


def state(name: str) -> State:
    return next(s for s in STATES if s.name == name)


# --- Argo CD -------------------------------------------------------------------------------------------------

# Argo CD (util/lua) opens only gopher-lua's base, table and package libraries and a reduced os
# (time, date): no string, math, io or debug library; strings have no methods.
_SANDBOX = """
local script, obj = ...
local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end
local env = {
  assert = assert, error = error, getmetatable = getmetatable, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
  setmetatable = setmetatable, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  xpcall = xpcall, table = copy(table), os = {time = os.time, date = os.date}, obj = obj,
}
env._G = env
local chunk, err = loadstring(script, "=health.lua")
if chunk == nil then error(err) end
setfenv(chunk, env)
getmetatable("").__index = nil
return chunk()
"""


def _to_lua(lua, value):
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def argocd_health(obj: dict, script: str | None = None) -> dict:
    """Run the health check as Argo CD does: `obj` global, the returned table is the health."""
    from lupa import lua51  # gopher-lua, Argo CD's interpreter, is Lua 5.1

    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    run = lua.execute("return function(...) " + _SANDBOX + " end")
    hs = run(script if script is not None else HEALTH_LUA.read_text(), _to_lua(lua, copy.deepcopy(obj)))
    assert lua.eval("type")(hs) == "table", "the health check must return a table"
    return {str(k): v for k, v in hs.items()}


# --- kstatus -------------------------------------------------------------------------------------------------

class KstatusUnavailable(RuntimeError):
    pass


def kstatus_binary() -> str:
    """Build (once, cached) and return tools/kstatus; KstatusUnavailable when that fails."""
    try:
        out = subprocess.run([str(ROOT / "scripts/kstatus")], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KstatusUnavailable(str(exc)) from exc
    if out.returncode != 0 or not out.stdout.strip():
        raise KstatusUnavailable(out.stderr.strip()[-2000:] or f"scripts/kstatus exited {out.returncode}")
    return out.stdout.strip().splitlines()[-1]


def kstatus(obj: dict, binary: str) -> dict:
    out = subprocess.run([binary], input=json.dumps(obj), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ci() -> bool:
    return os.environ.get("CI") == "true"
