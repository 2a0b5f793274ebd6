"""Argo CD's view of a TradingSystem: k8s/argocd/health.lua run over one object per state of the
operator's status contract (tests/operator/status_contract.py), in a sandbox with only what Argo CD's
Lua VM offers."""

import re

import pytest
import yaml

from tests.operator.status_contract import (ARGOCD_CM, ARGOCD_HEALTH_KEY, ARGOCD_STATUSES, HEALTH_LUA, STATES,
                                            argocd_health, state, ts)


@pytest.mark.parametrize("case", STATES, ids=[s.name for s in STATES])
def test_health_check_per_state(case):
    hs = argocd_health(case.obj)
    assert set(hs) == {"status", "message"}
    assert hs["status"] in ARGOCD_STATUSES
    assert (hs["status"], case.argocd_message.lower() in hs["message"].lower()) == (case.argocd, True), hs


def test_stalled_message_is_the_conditions_own():
    obj = state("rollout aborted by a demotion").obj
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert argocd_health(obj)["message"] == stalled["message"]


def test_stale_conditions_of_an_older_generation_do_not_count():
    # status.observedGeneration is current but a condition still speaks for the generation before
    obj = state("ready at target").obj
    for c in obj["status"]["conditions"]:
        if c["type"] == "Ready":
            c["observedGeneration"] = 2
    assert argocd_health(obj)["status"] == "Progressing"
    old_stall = state("configuration refused (observedGeneration kept at the last applied)").obj
    for c in old_stall["status"]["conditions"]:
        c["observedGeneration"] = 5  # the refusal was of generation 5; generation 6 is not looked at yet
    assert argocd_health(old_stall)["status"] == "Progressing"


def test_spec_halted_without_status_is_still_waiting_for_the_operator():
    assert argocd_health(ts(halted=True))["status"] == "Progressing"


def test_argocd_cm_carries_the_script_verbatim():
    cm = yaml.safe_load(ARGOCD_CM.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"][ARGOCD_HEALTH_KEY] == HEALTH_LUA.read_text()


def test_script_keeps_to_argo_cds_sandbox():
    code = "\n".join(line.split("--", 1)[0] for line in HEALTH_LUA.read_text().splitlines())
    assert not re.search(r"\b(string|math|io|debug|require|dofile|loadfile)\b", code)
    assert not re.search(r"\w+:\w+\(", code)  # no method calls: strings have none in Argo CD
    assert re.search(r"^hs = \{\}$", code, re.M) and code.rstrip().endswith("return hs")
    # the sandbox really refuses what Argo CD refuses
    with pytest.raises(Exception, match="string"):
        argocd_health(ts(), 'hs = {status = string.lower("HEALTHY")} return hs')
    with pytest.raises(Exception):
        argocd_health(ts(), 'hs = {status = ("Healthy"):lower()} return hs')
    assert argocd_health(ts(), 'hs = {status = os.date("!%Y") ~= nil and "Healthy" or "Unknown", message = ""} '
                                'return hs')["status"] == "Healthy"
