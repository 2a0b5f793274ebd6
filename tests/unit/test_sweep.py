"""Sweeps: the grid is the cartesian product in the order given (values kept as written), a malformed
--sweep is refused with SweepError (never another exception), a failing point is a row with its error,
and the local process pool and a Dask cluster give the same rows in grid order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from celeris.commands import sweep


def score(point: dict[str, str]) -> dict[str, object]:
    """A task for the workers (module level: it is pickled)."""
    if point.get("x") == "boom":
        raise RuntimeError("this point cannot run")
    return {"pnl": str(int(point.get("x", "0")) * 10 + int(point.get("y", "0"))), "stats": {"fills": 3}}


def test_the_grid_is_the_product_first_name_slowest():
    points = sweep.parse_grid(["x=1,2", "y=0.10,0.20,0.30"])
    assert points == [{"x": "1", "y": "0.10"}, {"x": "1", "y": "0.20"}, {"x": "1", "y": "0.30"},
                      {"x": "2", "y": "0.10"}, {"x": "2", "y": "0.20"}, {"x": "2", "y": "0.30"}]
    assert sweep.parse_grid([]) == [{}]


@pytest.mark.parametrize("spec", ["x", "=1,2", "x=", "x=1,,2", "x=1,1", "1x=2", "x y=1", "x=,"])
def test_malformed_sweeps_are_refused(spec):
    with pytest.raises(sweep.SweepError):
        sweep.parse_grid([spec])


def test_a_name_twice_and_a_huge_grid_are_refused():
    with pytest.raises(sweep.SweepError, match="twice"):
        sweep.parse_grid(["x=1", "x=2"])
    with pytest.raises(sweep.SweepError, match="points"):
        sweep.parse_grid([f"a{i}=" + ",".join(map(str, range(10))) for i in range(5)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=4))
def test_any_input_is_a_grid_or_a_sweep_error(specs):
    try:
        points = sweep.parse_grid(specs)
    except sweep.SweepError:
        return
    sizes = [len(s.partition("=")[2].split(",")) for s in specs]
    expected = 1
    for n in sizes:
        expected *= n
    assert len(points) == expected and len({tuple(p.items()) for p in points}) == expected


def test_the_pool_keeps_grid_order_and_a_failure_is_one_row():
    points = sweep.parse_grid(["x=3,boom,1,2"])
    rows = sweep.run(score, points, workers=2)
    assert [r["point"]["x"] for r in rows] == ["3", "boom", "1", "2"]
    assert rows[1]["error"].startswith("RuntimeError") and "error" not in rows[0]
    assert [r["result"]["pnl"] for r in rows if "result" in r] == ["30", "10", "20"]
    text = sweep.table(rows, ["pnl", "stats.fills"])
    assert text.splitlines()[0].split() == ["x", "pnl", "stats.fills"]
    lines = text.splitlines()
    assert lines[2].split() == ["boom", "error", "[1]"]  # the message is below the table, not in a column
    assert lines[5] == "error [1] at x=boom: RuntimeError: this point cannot run"
    assert max(len(line) for line in lines[:5]) < 30


def test_a_dask_cluster_gives_the_same_rows_as_the_pool():
    distributed = pytest.importorskip("distributed")
    points = sweep.parse_grid(["x=1,2", "y=5,6"])
    local = sweep.run(score, points, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = sweep.run(score, points, scheduler=cluster.scheduler_address)
    assert remote == local
