"""`celeris backtest` reports each execution algorithm a strategy ran, with its slippage against the
arrival mid, as a user sees it (the CLI on the head of the real capture, a plugin that TWAPs)."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "data" / "binance" / "hftbacktest_usdm_btcusdt_20240808_first60s.txt.gz"


def run(*extra):
    out = subprocess.run([sys.executable, "-m", "celeris", "backtest", str(CAPTURE), "--strategy-dir",
                          str(Path(__file__).parent / "plugins_algo"), "--strategies",
                          '[{"name": "tw", "type": "twap_once", "symbol": "BTCUSDT", "order_size": "0.001"}]',
                          "--latency-ms", "5", *extra], env={**os.environ, "PYTHONPATH": str(ROOT / "services")},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_twap_is_reported_with_its_slippage_against_arrival(tmp_path):
    result = json.loads(run("--json", "--plot", str(tmp_path)))
    [algo] = result["algos"]
    assert algo["owner"] == "tw" and algo["kind"] == "twap" and algo["side"] == "BUY"
    assert algo["filled"] == algo["qty"] == "0.010" and algo["state"] == "FINISHED"
    average, arrival = Decimal(algo["average_price"]), Decimal(algo["arrival_price"])
    expected_bps = (average - arrival) / arrival * 10_000  # a buy above arrival is a cost: positive
    assert abs(Decimal(str(algo["slippage_bps"])) - expected_bps) < Decimal("0.01")
    # The strategy's own position is what the algorithm bought (its children are its orders).
    assert result["position"] == "0.010" and result["per_strategy"]["tw"]["fills"] >= 1
    report = (tmp_path / "report.md").read_text()
    assert "## Execution algorithms" in report and algo["algo_id"] in report
