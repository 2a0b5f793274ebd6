"""The operator's pure decisions: gates over a stage's window that can fail, approval bound to the image,
abort without flapping, conditions by convention, the image rollout machine, mode paths."""

import pytest
from hypothesis import given, strategies as st

from celeris.domain.modes import IllegalModeChange, Mode, change_mode
from celeris_operator import approval, conditions, images, reconciler, rollout, signals

SPEC = {"mode": "live", "image": "celeris:1",
        "rollout": {"stages": [{"mode": "observation", "minDuration": "1h"},
                               {"mode": "simulation", "minDuration": "30m"}, {"mode": "live"}]}}


def facts(now=10_000.0, since=0.0, ready=True, mismatches=0, critical=0, orders=0, rejects=0, approved=False,
          aborted=""):
    return rollout.Facts(now, since, {"execution": ready, "risk": True}, mismatches, critical, orders, rejects,
                         approved, "not approved", aborted)


def test_durations_have_one_grammar():
    assert rollout.parse_duration("2h30m") == 9000
    assert rollout.parse_duration("45s") == 45 and rollout.parse_duration("") == 0
    for bad in ("5s5s5s", "1m1h", "10", "1d", "-1s", "1.5h"):
        with pytest.raises(ValueError):
            rollout.parse_duration(bad)


@given(st.text(alphabet="0123456789hms", max_size=8))
def test_duration_grammar_matches_the_crd_pattern(text):
    import re
    crd = re.fullmatch(r"([0-9]+h)?([0-9]+m)?([0-9]+s)?", text) is not None and text != ""
    try:
        rollout.parse_duration(text)
        ok = text != ""
    except ValueError:
        ok = False
    assert ok == crd


def test_promotion_waits_for_soak_and_approval():
    waiting = rollout.decide(SPEC, Mode.OBSERVATION, facts(now=100))
    assert waiting.action == "stay" and "minDuration" in waiting.reason
    assert rollout.decide(SPEC, Mode.OBSERVATION, facts()).action == "promote"
    unapproved = rollout.decide(SPEC, Mode.SIMULATION, facts())
    assert unapproved.action == "stay" and "approvedForLive" in unapproved.reason
    approved = rollout.decide(SPEC, Mode.SIMULATION, facts(approved=True))
    assert approved.action == "promote" and approved.mode is Mode.LIVE


def test_live_needs_a_simulation_soak():
    spec = {**SPEC, "rollout": {"stages": [{"mode": "observation"}, {"mode": "simulation"}, {"mode": "live"}]}}
    decision = rollout.decide(spec, Mode.SIMULATION, facts(approved=True))
    assert decision.action == "stay" and "non-zero minDuration" in decision.reason


@pytest.mark.parametrize("bad, gate", [
    (dict(ready=False), "componentsReady"), (dict(mismatches=1), "reconciliation"),
    (dict(critical=1), "criticalAlerts"), (dict(orders=100, rejects=2), "errorBudget"),
])
def test_every_gate_can_fail_blocking_below_live_and_demoting_in_live(bad, gate):
    blocked = rollout.decide(SPEC, Mode.OBSERVATION, facts(**bad))
    assert blocked.action == "stay" and gate in blocked.reason and not blocked.gates[gate]
    demoted = rollout.decide(SPEC, Mode.LIVE, facts(approved=True, **bad))
    assert demoted.action == "demote" and demoted.mode is Mode.SIMULATION and gate in demoted.reason
    assert demoted.abort


def test_error_budget_needs_enough_orders_and_uses_integers():
    assert rollout.error_rate_ok(SPEC, 10, 5)  # too few orders to judge
    assert rollout.error_rate_ok(SPEC, 100, 1) and not rollout.error_rate_ok(SPEC, 100, 2)
    spec = {**SPEC, "rollout": {**SPEC["rollout"], "gates": {"errorBudgetPct": "0.5", "errorBudgetMinOrders": 1}}}
    assert rollout.error_rate_ok(spec, 1000, 5) and not rollout.error_rate_ok(spec, 1000, 6)


def test_an_aborted_rollout_stays_down():
    decision = rollout.decide(SPEC, Mode.SIMULATION, facts(approved=True, aborted="gate failed in live"))
    assert decision.action == "stay" and "aborted" in decision.reason


def test_lower_target_applies_at_once_and_illegal_jumps_raise():
    assert rollout.decide({**SPEC, "mode": "observation"}, Mode.LIVE, facts()).mode is Mode.OBSERVATION
    with pytest.raises(IllegalModeChange):
        change_mode(Mode.OBSERVATION, Mode.LIVE)
    assert reconciler.mode_path(Mode.OBSERVATION, Mode.LIVE) == [Mode.SIMULATION, Mode.LIVE]
    assert reconciler.mode_path(Mode.LIVE, Mode.OBSERVATION) == [Mode.OBSERVATION]
    assert reconciler.mode_path(Mode.LIVE, Mode.LIVE) == []


# -- approval and abort ---------------------------------------------------------------------------
def meta(generation, retry=None):
    return {"generation": generation, "annotations": {approval.RETRY_ANNOTATION: retry} if retry else {}}


def test_approval_is_bound_to_the_image_and_revoked_by_a_new_one():
    spec = {**SPEC, "approvedForLive": True}
    first = approval.evaluate(spec, meta(3), {}, "t")
    assert first.valid and first.record == {"image": "celeris:1", "generation": 3, "at": "t"}
    moved = approval.evaluate({**spec, "image": "celeris:2"}, meta(4), {"approval": first.record}, "t")
    assert not moved.valid and "false, then true" in moved.reason and moved.record["revoked"]
    cleared = approval.evaluate({**spec, "approvedForLive": False, "image": "celeris:2"}, meta(5),
                                {"approval": moved.record}, "t")
    assert cleared.record is None and not cleared.valid
    again = approval.evaluate({**spec, "image": "celeris:2"}, meta(6), {}, "t")
    assert again.valid and again.record["image"] == "celeris:2"


def test_after_an_abort_live_needs_a_new_approval_and_a_new_revision_or_retry():
    spec = {**SPEC, "approvedForLive": True}
    record = {"image": "celeris:1", "generation": 3, "at": "t"}
    abort = approval.abort_record(meta(7), "gate failed in live: reconciliation", "t")
    status = {"approval": record, "abort": abort, "lastAbortGeneration": 7}
    same = approval.evaluate(spec, meta(7), status, "t")
    assert same.abort == abort and not same.valid and "predates the abort" in same.reason
    retried = approval.evaluate(spec, meta(7, retry="1"), status, "t")
    assert retried.abort is None and not retried.valid  # the abort is lifted, the old approval still is not enough
    newer = approval.evaluate(spec, meta(9), {**status, "approval": None}, "t")
    assert newer.abort is None and newer.valid and newer.record["generation"] == 9


def test_auto_promote_needs_no_approval_but_respects_the_abort():
    spec = {**SPEC, "rollout": {**SPEC["rollout"], "autoPromote": True}}
    assert approval.evaluate(spec, meta(2), {}, "t").valid
    abort = approval.abort_record(meta(2), "x", "t")
    assert approval.evaluate(spec, meta(2), {"abort": abort}, "t").abort == abort


# -- signals over the window ------------------------------------------------------------------------
def seen(component, started=1, ready=True, mode=Mode.SIMULATION, **details):
    return signals.Observed(component, True, ready, mode, started_at_ns=started,
                            details={k: str(v) for k, v in details.items()})


def test_counters_count_within_the_window_and_restarts_from_zero():
    before = {"account": seen("account", mismatches=5, critical_alerts=1), "risk": seen("risk", critical_alerts=2)}
    stage = signals.next_window({}, before, Mode.SIMULATION, 100.0)
    assert signals.increase(stage, signals.counters(before), "reconciliation") == 0  # not since start
    later = {"account": seen("account", mismatches=6, critical_alerts=1), "risk": seen("risk", started=2,
                                                                                        critical_alerts=1)}
    stage = signals.next_window(stage, later, Mode.SIMULATION, 105.0)
    now = signals.counters(later)
    assert signals.increase(stage, now, "reconciliation") == 1
    assert signals.increase(stage, now, "criticalAlerts") == 1  # risk restarted: its 1 is new


def test_a_restart_between_two_passes_keeps_what_the_old_process_counted():
    """Mismatches seen, then the account restarts within one tick: the window still holds them, and the
    soak starts again (review: the restart wiped the window and the rollout promoted)."""
    stage = signals.next_window({}, {"account": seen("account", mismatches=0)}, Mode.SIMULATION, 100.0)
    stage = signals.next_window(stage, {"account": seen("account", mismatches=5)}, Mode.SIMULATION, 105.0)
    restarted = {"account": seen("account", started=9, mismatches=0)}
    stage = signals.next_window(stage, restarted, Mode.SIMULATION, 110.0)
    assert signals.increase(stage, signals.counters(restarted), "reconciliation") == 5
    assert signals.window_start(stage, 110.0) == 110.0


@pytest.mark.parametrize("bad", ["1.0", "many", "", "-5", "1e3"])
def test_a_counter_that_cannot_be_read_fails_its_gate(bad):
    observed = {"risk": seen("risk", critical_alerts=bad), "account": seen("account", critical_alerts=3)}
    stage = signals.next_window({}, observed, Mode.LIVE, 100.0)
    assert signals.increase(stage, signals.counters(observed), "criticalAlerts") >= signals.UNREADABLE
    assert not rollout.evaluate_gates(SPEC, Mode.LIVE, facts(critical=signals.UNREADABLE))["criticalAlerts"]
    assert not rollout.error_rate_ok(SPEC, signals.UNREADABLE, 0)


def test_the_reject_rate_is_judged_over_recent_time():
    """200,000 clean orders, then 1,000 rejects in a row: 0.5 % over the stage, but all of the last
    minutes (review: averaged over the whole stage it never demoted)."""
    stage: dict = {}
    assert signals.recent(stage, 0.0, 0, 0, 300.0) == (0, 0)
    for t in range(15, 3600, 15):
        signals.recent(stage, float(t), 200_000 * t // 3600, 0, 300.0)
    orders, rejects = signals.recent(stage, 3615.0, 201_000, 1_000, 300.0)
    assert rejects == 1000 and orders < 30_000
    assert not rollout.error_rate_ok(SPEC, orders, rejects)
    assert len(stage["errorSamples"]) <= 300 / signals.ERROR_SAMPLE_EVERY_S + 2  # bounded in status


def test_the_soak_restarts_when_a_component_is_not_ready_or_not_in_the_stage():
    all_in = {"a": seen("a"), "b": seen("b")}
    stage = signals.next_window({}, all_in, Mode.SIMULATION, 100.0)
    assert signals.window_start(stage, 200.0) == 100.0
    stage = signals.next_window(stage, {"a": seen("a"), "b": seen("b", ready=False)}, Mode.SIMULATION, 150.0)
    assert signals.window_start(stage, 150.0) == 150.0
    stage = signals.next_window(stage, all_in, Mode.SIMULATION, 160.0)
    assert signals.window_start(stage, 300.0) == 160.0
    stage = signals.next_window(stage, {"a": seen("a"), "b": seen("b", mode=Mode.OBSERVATION)}, Mode.SIMULATION, 170.0)
    assert signals.window_start(stage, 170.0) == 170.0


# -- conditions ----------------------------------------------------------------------------------------
def test_conditions_merge_by_type_and_keep_transition_times():
    ready = conditions.Seen(4, True, True, "", True, "", "")
    first = conditions.merge(None, conditions.summarize(ready), "t1")
    again = conditions.merge(first + [{"type": "Custom", "status": "True"}], conditions.summarize(ready), "t2")
    assert conditions.get(again, "Ready")["lastTransitionTime"] == "t1"
    assert conditions.get(again, "Custom") == {"type": "Custom", "status": "True"}
    assert all(c.get("observedGeneration") == 4 for c in again if c["type"] != "Custom")
    soaking = conditions.Seen(5, True, True, "", False, "waiting for gates: minDuration", "")
    moved = conditions.merge(again, conditions.summarize(soaking), "t3")
    assert conditions.get(moved, "Ready")["status"] == "False" and conditions.get(moved, "Ready")[
        "lastTransitionTime"] == "t3"
    assert conditions.get(moved, "Progressing")["status"] == "True"
    assert conditions.get(moved, "Reconciling") == {**conditions.get(moved, "Progressing"), "type": "Reconciling"}
    stalled = conditions.summarize(conditions.Seen(5, True, True, "", False, "", "", aborted="gate failed"))
    assert conditions.get(stalled, "Stalled")["status"] == "True"
    assert conditions.get(stalled, "Progressing")["reason"] == "RolloutAborted"


# -- the image rollout machine --------------------------------------------------------------------------
ORDER = ["marketdata", "execution", "strategy"]


def test_images_roll_group_by_group_and_roll_back_on_timeout():
    status = {"lastGoodImage": "c:1", "images": {g: "c:1" for g in ORDER}}
    spec = {"image": "c:2"}
    s1 = images.step(spec, status, ORDER, {}, 0.0, 10.0, "", "t")
    assert s1.images == {"marketdata": "c:2", "execution": "c:1", "strategy": "c:1"} and s1.rollout["index"] == 0
    status = {**status, "images": s1.images, "imageRollout": s1.rollout}
    s2 = images.step(spec, status, ORDER, {"marketdata": "c:2"}, 5.0, 10.0, "", "t")
    assert s2.images["execution"] == "c:2" and s2.images["strategy"] == "c:1" and s2.rollout["index"] == 1
    status = {**status, "images": s2.images, "imageRollout": s2.rollout}
    s3 = images.step(spec, status, ORDER, {"marketdata": "c:2"}, 16.0, 10.0, "", "t")
    assert s3.images == {g: "c:1" for g in ORDER} and s3.last_rollout["result"] == "rolled back"
    assert s3.last_rollout["failedComponent"] == "execution" and s3.rollout is None
    status = {**status, "images": s3.images, "imageRollout": None, "lastRollout": s3.last_rollout}
    s4 = images.step(spec, status, ORDER, {}, 20.0, 10.0, "", "t")
    assert s4.rollout is None and s4.images == {g: "c:1" for g in ORDER}  # not retried by itself
    s5 = images.step(spec, status, ORDER, {}, 20.0, 10.0, "retry-1", "t")
    assert s5.rollout is not None  # an explicit retry starts it again


def test_images_complete_when_every_group_is_ready():
    status = {"lastGoodImage": "c:1"}
    done = images.step({"image": "c:2"}, status, ORDER, {g: "c:2" for g in ORDER}, 0.0, 10.0, "", "t")
    assert done.last_good == "c:2" and done.rollout is None and done.last_rollout["result"] == "complete"


def test_a_forged_status_mode_is_not_believed():
    """status.mode=live written by someone with status RBAC while every component is in simulation: the
    pass acts on simulation (and would never step components up to a mode none of them reached)."""
    sim = {c: seen(c, mode=Mode.SIMULATION) for c in ("execution", "risk")}
    mode, why = reconciler.believed_mode(Mode.LIVE, sim)
    assert mode is Mode.SIMULATION and "no component reports it" in why
    assert reconciler.believed_mode(Mode.SIMULATION, sim) == (Mode.SIMULATION, "")
    lagging = {"execution": seen("execution", mode=Mode.LIVE), "risk": seen("risk", mode=Mode.OBSERVATION)}
    assert reconciler.believed_mode(Mode.LIVE, lagging) == (Mode.LIVE, "")  # one lags: it is corrected up
    down = {c: seen(c, mode=Mode.LIVE) for c in ("execution", "risk")}
    assert reconciler.believed_mode(Mode.SIMULATION, down) == (Mode.SIMULATION, "")  # demoted in the next pass
    unreachable = {"execution": signals.Observed("execution", False)}
    assert reconciler.believed_mode(Mode.LIVE, unreachable) == (Mode.LIVE, "")
