"""kstatus' view of a TradingSystem (sigs.k8s.io/cli-utils' status.Compute, what Flux's health checks,
kpt and cli-utils' appliers use): tools/kstatus over the same objects as the Argo CD test. Skipped when
the tool cannot be built (no Go) outside CI; under CI=true that is a failure."""

import pytest

from tests.operator.status_contract import STATES, KstatusUnavailable, ci, kstatus, kstatus_binary, state


@pytest.fixture(scope="module")
def binary():
    try:
        return kstatus_binary()
    except KstatusUnavailable as exc:
        if ci():
            pytest.fail(f"scripts/kstatus could not build tools/kstatus under CI: {exc}")
        pytest.skip(f"scripts/kstatus could not build tools/kstatus: {exc}")


@pytest.mark.parametrize("case", STATES, ids=[s.name for s in STATES])
def test_kstatus_per_state(binary, case):
    assert kstatus(case.obj, binary)["status"] == case.kstatus


def test_stalled_carries_its_message(binary):
    res = kstatus(state("rollout aborted by a demotion").obj, binary)
    assert "celeris.dev/retry" in res["message"]
    assert [(c["type"], c["status"], c["reason"]) for c in res["conditions"]] == [("Stalled", "True",
                                                                                   "RolloutAborted")]


def test_stalled_listed_before_reconciling_is_failed(binary):
    # The mirror image of the "Reconciling listed first" state: kstatus takes the first True of the two.
    obj = state("Stalled and Reconciling both True, Reconciling listed first").obj
    obj["status"]["conditions"].reverse()
    assert kstatus(obj, binary)["status"] == "Failed"


def test_deletion_is_terminating(binary):
    obj = state("ready at target").obj
    obj["metadata"]["deletionTimestamp"] = "2026-11-30T11:00:00Z"
    assert kstatus(obj, binary)["status"] == "Terminating"
