"""`celeris backtest` against the paper venue's limits, on the first 60 s of the real capture: a crossed
quote fills only what the book shows through it, nothing happens after the last line (orders still on the
wire never fill and are reported in flight), a queue model the formula cannot compute is refused before
anything runs, and the venue's open-orders limit refuses the 201st order as Binance does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from tests.conftest import CAPTURE_60S

BIG_ASK = '''
from celeris.domain import sdk
from celeris.domain.values import Side


class BigAsk(sdk.Strategy):
    """One 20 BTC post-only ask 20 ticks above the touch: the book soon moves through it."""

    name = "bigask"

    def __init__(self):
        self.done = False

    def on_book(self, book):
        if not self.done:
            self.done = True
            self.place_ticks(self.symbol, Side.SELL, book.best_ask_ticks + 20, 20_000, post_only=True)
'''

MANY_BIDS = '''
from celeris.domain import sdk
from celeris.domain.values import Side


class ManyBids(sdk.Strategy):
    """Bids 1 lot far below the touch on each book update until 260 are placed: none of them fills."""

    name = "manybids"

    def __init__(self):
        self.placed = 0

    def on_book(self, book):
        if self.placed < 260:
            self.placed += 1
            self.place_ticks(self.symbol, Side.BUY, book.best_bid_ticks - 500 - self.placed, 1)
'''

SPEC = """apiVersion: celeris.dev/v1alpha1
kind: TradingSystem
metadata: {{name: pv}}
spec:
  symbols: [BTCUSDT]
  risk: {{maxPositionUsdt: "5000000", maxTotalExposureUsdt: "5000000", maxOrdersPerSecond: 100, maxLeverage: 20}}
  strategies: [{{name: s, type: {type}, symbol: BTCUSDT, orderSize: "0.001"}}]
"""


def plugin(tmp_path: Path, source: str, kind: str) -> tuple[Path, Path]:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / f"{kind}.py").write_text(source)
    spec = tmp_path / f"{kind}.yaml"
    spec.write_text(SPEC.format(type=kind))
    return spec, plugins


def celeris(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celeris", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


def run_json(*args: str) -> dict:
    out = celeris("backtest", str(CAPTURE_60S), "--json", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_a_crossed_20_btc_ask_fills_only_what_the_book_shows_through_it(tmp_path):
    spec, plugins = plugin(tmp_path, BIG_ASK, "bigask")
    runs = _in_process(["-f", str(spec), "--strategy-dir", str(plugins)])
    result, run = runs
    paper = run.paper
    assert paper.fills and all(f.is_maker and f.last_price_ticks == 618_023 for f in paper.fills)
    # The first cross took 7.501 BTC, every bid at or above our price then (4.538 of them at 61807.9), not the
    # 19.960 BTC left of the order; each later one only what the book showed through it beyond that.
    assert max(f.last_qty_steps for f in paper.fills) == 7_501
    # The rest kept resting, filled as new bids showed through it while the market rose over the minute.
    assert sum(f.last_qty_steps for f in paper.fills) <= 20_000 and len(paper.fills) > 10
    assert Decimal(result["position"]) >= Decimal("-20")


def test_orders_in_flight_at_the_end_never_fill_and_are_reported_in_flight(tmp_path):
    result, run = _in_process(["--latency-ms", "30000"])
    end = result["end_utc_ns"]
    assert all(f.ts_event_ns <= end for f in run.paper.fills)  # nothing at the venue after the last line
    assert all(f.ts_event_ns <= end for f in run.tape.fills)
    in_flight = [o for o in result["open_orders_at_end"] if o["status"] == "PENDING_SUBMIT"]
    assert in_flight, "orders placed in the last 30 s were still on the wire"
    assert {o["client_order_id"] for o in in_flight}.isdisjoint(run.paper.orders)  # the venue never saw them
    assert not run.execution.open_orders()  # then cancelled by the stop
    # Byte-identical run to run (the result, but for its wall-clock keys).
    again, _ = _in_process(["--latency-ms", "30000"])
    for r in (result, again):
        for key in r["timing"]["varies"]:
            r.pop(key)
    assert json.dumps(result, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_an_entry_latency_of_days_from_a_file_fills_nothing_after_the_end(tmp_path):
    latencies = tmp_path / "lat.csv"
    day_ns = 86_400 * 10**9
    latencies.write_text(f"timestamp_ns,entry_ns,response_ns\n0,{int(11.6 * day_ns)},1000000\n")
    result, run = _in_process(["--latency-file", str(latencies)])
    assert run.paper.fills == [] and result["fills"] == 0
    assert result["open_orders_at_end"] and all(o["status"] == "PENDING_SUBMIT" for o in result["open_orders_at_end"])


def test_a_power_the_queue_formula_cannot_compute_is_refused_before_anything_runs():
    for args in (["--queue-model", "power:500"], ["--sweep", "queue_model=power:2,power:500"]):
        out = celeris("backtest", str(CAPTURE_60S), *args)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and out.stdout == "" and len(lines) == 1, (out.returncode, out.stderr[-1000:])
        assert "power:500" in lines[0] and "at most 10" in lines[0]


def test_the_201st_open_order_is_refused_as_binance_refuses_it(tmp_path):
    spec, plugins = plugin(tmp_path, MANY_BIDS, "manybids")
    result = run_json("-f", str(spec), "--strategy-dir", str(plugins))
    assert result["orders"] == 200 and len(result["open_orders_at_end"]) == 200
    assert result["orders_refused"] == 60


def _in_process(args: list[str]) -> tuple[dict, object]:
    """The backtest run in this process (its result, and the run: its venue's and tape's fills)."""
    from celeris.assembly import backtest
    from celeris import cli

    runs: list = []
    original = backtest._Run.result

    def keep(self):
        runs.append(self)
        return original(self)

    backtest._Run.result = keep
    try:
        out = _capture_stdout(lambda: cli.main(["backtest", str(CAPTURE_60S), "--json", *args]))
    finally:
        backtest._Run.result = original
    return json.loads(out), runs[-1]


def _capture_stdout(call) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = call()
    assert code in (0, None), code
    return buffer.getvalue()
