"""`celeris backtest` as a quant runs it: `python -m celeris backtest ...` on the head of the real capture.

The JSON's keys and their units, its money as decimal strings that add up (net = the strategies' PnL +
funding), byte-identical results for the same file, settings and seed (latency included: it runs on the
event clock), a spec's and a plugin directory's strategies, the report's PNGs, sweeps in a process pool
and on a Dask cluster, and every file that is not a capture refused in one line with exit code 2.
"""

from __future__ import annotations

import gzip
import inspect
import json
import os
import struct
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import DATA

FULL = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"
HEAD_LINES = 12_000
"""About 45 s of the capture: every kind of message, dozens of orders and fills, a run under a second."""

PLUGIN = '''
from celeris.domain.signals import Signal, Urgency
from celeris.domain.values import Side


class TouchBidder:
    """Bids at the touch every `every` book updates (a plugin strategy for the tests)."""

    name = "touch_bidder"

    def __init__(self):
        self.updates, self.every = 0, 20

    def initialize(self, config):
        self.every = int(config.get("params", {}).get("every", 20))

    def on_market_data(self, top):
        self.updates += 1
        if self.updates % self.every:
            return []
        return [Signal(top.symbol, Side.BUY, 0.5, self.name, top.ts_event_ns, Urgency.PASSIVE, top.bid_ticks,
                       "touch")]

    def on_order_fill(self, fill):
        pass

    def on_position_update(self, position):
        pass

    def get_state(self):
        return {}
'''


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    """The first HEAD_LINES lines of the real capture, as a gzip capture of its own."""
    path = tmp_path_factory.mktemp("capture") / "head.gz"
    with gzip.open(FULL, "rb") as src, gzip.open(path, "wb") as dst:
        for i, line in enumerate(src):
            if i == HEAD_LINES:
                break
            dst.write(line)
    return path


def celeris(*args: str, timeout: float = 300, hash_seed: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed  # str/enum hashes, and so set orders, differ between processes
    return subprocess.run([sys.executable, "-m", "celeris", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def backtest_json(capture: Path, *extra: str, hash_seed: str | None = None) -> tuple[dict, str]:
    result = celeris("backtest", str(capture), "--json", *extra, hash_seed=hash_seed)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "exactly one JSON object on stdout"
    return json.loads(lines[0]), lines[0]


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal: exit 2, nothing on stdout, one line on stderr and no traceback. Returns the line."""
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_the_json_has_every_figure_with_units_and_the_money_adds_up(head):
    r, _ = backtest_json(head)
    assert r["symbol"] == "BTCUSDT" and r["messages"] == HEAD_LINES and r["gaps"] == 0
    assert r["messages_per_s"] > 0 and r["orders"] > 0 and r["fills"] > 0
    pnl = {k: Decimal(v) for k, v in r["pnl"].items() if k.endswith("_usdt")}
    assert all(len(v.split(".")[1]) == 8 for k, v in r["pnl"].items() if k.endswith("_usdt"))  # decimal strings
    assert pnl["net_usdt"] == pnl["realized_usdt"] - pnl["fees_usdt"] + pnl["funding_usdt"] + pnl["unrealized_usdt"]
    s = r["stats"]
    for key in ("sharpe", "sortino", "max_drawdown_usdt", "turnover_usdt", "fill_ratio", "maker_share", "markouts",
                "annualisation", "definitions"):
        assert key in s, key
    assert "sqrt" in s["annualisation"] and "per-second" in s["annualisation"]
    assert isinstance(s["sharpe"], float) and isinstance(s["sortino"], float)
    assert Decimal(s["max_drawdown_usdt"]) >= 0 and Decimal(s["turnover_usdt"]) > 0
    assert 0 < s["fill_ratio"] <= 1 and 0 <= s["maker_share"] <= 1
    assert set(s["markouts"]) == {"1s", "10s", "60s"}
    for h, m in s["markouts"].items():
        assert set(m) == {"fills", "mean_usdt", "mean_bps"} and m["fills"] <= r["fills"], h
    assert s["markouts"]["1s"]["fills"] > 0 and isinstance(s["markouts"]["1s"]["mean_bps"], float)
    # The default strategies, each with its own orders, fills and PnL; together they are the whole.
    per = r["per_strategy"]
    assert set(per) == {"mom-btcusdt", "mm-btcusdt"}
    assert sum(p["orders"] for p in per.values()) == r["orders"]
    assert sum(p["fills"] for p in per.values()) == r["fills"]
    assert sum(Decimal(p["pnl_usdt"]) for p in per.values()) == pnl["net_usdt"] - pnl["funding_usdt"]
    assert per["mm-btcusdt"]["maker_share"] == 1.0  # it only quotes post-only
    for h in ("1s", "10s", "60s"):  # each strategy's markouts are its share of the whole's
        assert sum(p["markouts"][h]["fills"] for p in per.values()) == s["markouts"][h]["fills"]
        if s["markouts"][h]["fills"]:
            weighted = sum(p["markouts"][h]["mean_bps"] * p["markouts"][h]["fills"] for p in per.values()
                           if p["markouts"][h]["fills"])
            assert weighted / s["markouts"][h]["fills"] == pytest.approx(s["markouts"][h]["mean_bps"], rel=1e-4)
    for o in r["open_orders_at_end"]:
        assert set(o) >= {"strategy", "symbol", "side", "price", "qty", "client_order_id"}
        assert o["strategy"] in per and o["symbol"] == "BTCUSDT" and o["side"] in ("BUY", "SELL")
        Decimal(o["price"]), Decimal(o["qty"])
    assert len(r["curve"]["t"]) == len(r["curve"]["equity"]) == s["curve_seconds"] + 1


def test_a_text_capture_as_record_writes_it_is_the_same_backtest(head, tmp_path):
    text = tmp_path / "head.txt"  # `celeris record x.txt` writes plain lines; the last may lack its newline
    text.write_bytes(gzip.decompress(head.read_bytes()).rstrip(b"\n"))
    from_text, _ = backtest_json(text)
    from_gzip, _ = backtest_json(head)
    drop = ("file", "messages_per_s", "timing")
    assert {k: v for k, v in from_text.items() if k not in drop} == {k: v for k, v in from_gzip.items() if k not in drop}


def test_the_same_file_settings_and_seed_give_byte_identical_results(head):
    runs = [backtest_json(head, "--latency-ms", "5", "--seed", "7", hash_seed=seed) for seed in ("1", "2")]
    (first, first_text), (second, second_text) = runs
    cut = first_text.index(', "messages_per_s"')
    assert first_text[:cut] == second_text[:cut]  # everything before the wall-clock keys, byte for byte
    varying = first["timing"]["varies"]
    assert first_text[cut:].startswith(', "messages_per_s"') and list(first)[-len(varying):] == varying
    assert {k: v for k, v in first.items() if k not in varying} == {k: v for k, v in second.items() if k not in varying}
    assert first["settings"]["latency_ms"] == 5.0 and first["settings"]["seed"] == 7


def test_a_latency_file_that_is_not_there_is_refused(head, tmp_path):
    assert "--latency-file" in refused(celeris("backtest", str(head), "--latency-file", str(tmp_path / "no.csv")))


@pytest.mark.parametrize("flags", [("--latency-ms", "nan"), ("--latency-ms", "-1"), ("--latency-ms", "inf"),
                                   ("--latency-ms", "60001"), ("--seed", "1.5"), ("--seed", "-2")])
def test_settings_that_cannot_run_are_refused(head, flags):
    result = celeris("backtest", str(head), *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr and flags[0] in result.stderr


def test_latency_runs_on_the_event_clock_and_changes_the_result(head):
    fast, _ = backtest_json(head)
    slow, _ = backtest_json(head, "--latency-ms", "200")
    assert fast["settings"]["latency_ms"] == 0.0 and slow["settings"]["latency_ms"] == 200.0
    assert (fast["fills"], fast["pnl"]["net_usdt"]) != (slow["fills"], slow["pnl"]["net_usdt"])


def _venue_takes(name: str) -> bool:
    from celeris.execution.paper import PaperVenue

    return name in inspect.signature(PaperVenue).parameters


def test_the_queue_model_and_seed_reach_the_venue_or_are_reported_ignored(head):
    r, _ = backtest_json(head, "--queue-model", "risk_averse", "--seed", "3")
    assert r["settings"]["queue_model"] == "risk_averse" and r["settings"]["seed"] == 3
    for name in ("queue_model", "seed"):
        assert (name in r["settings"]["venue_ignored"]) is not _venue_takes(name)
    if _venue_takes("queue_model"):  # a venue with queue models refuses one it does not know, in one line
        line = refused(celeris("backtest", str(head), "--queue-model", "no-such-model"))
        assert "no-such-model" in line


def test_a_spec_runs_its_strategies_and_a_plugin_directory_adds_types(head, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "touch.py").write_text(PLUGIN)
    spec = tmp_path / "system.yaml"
    spec.write_text("apiVersion: celeris.io/v1alpha1\nkind: TradingSystem\nmetadata: {name: bt}\nspec:\n"
                    "  symbols: [BTCUSDT]\n  strategies:\n"
                    "  - {name: bidder, type: touch_bidder, symbol: BTCUSDT, orderSize: '0.001', params: {every: 15}}\n"
                    "  - {name: quoter, type: market_making, symbol: BTCUSDT, orderSize: '0.001'}\n")
    r, _ = backtest_json(head, "-f", str(spec), "--strategy-dir", str(plugins))
    assert set(r["per_strategy"]) == {"bidder", "quoter"} and r["settings"]["strategies"] == ["bidder", "quoter"]
    assert r["per_strategy"]["bidder"]["orders"] > 0
    assert all(o["side"] == "BUY" for o in r["open_orders_at_end"] if o["strategy"] == "bidder")
    # Without the directory the type is unknown: one line naming the types there are.
    line = refused(celeris("backtest", str(head), "-f", str(spec)))
    assert "touch_bidder" in line and "momentum" in line and "market_making" in line
    line = refused(celeris("backtest", str(head), "--strategies",
                           '[{"name": "x", "type": "mine", "symbol": "BTCUSDT", "order_size": "0.001"}]'))
    assert "'mine'" in line and "known: " in line
    (plugins / "touch.py").write_text(PLUGIN.replace("def get_state", "def get_state(:"))  # a syntax error
    line = refused(celeris("backtest", str(head), "-f", str(spec), "--strategy-dir", str(plugins)))
    assert "touch.py failed to load" in line and "SyntaxError" in line
    spec.write_text("kind: TradingSystem\nspec: {symbols: [BTCUSDT], risk: {maxPositionUsdt: lots}}\n")
    assert "maxPositionUsdt" in refused(celeris("backtest", str(head), "-f", str(spec)))


def test_the_documented_example_strategy_backtests_and_sweeps_with_its_params_checked(head, tmp_path):
    examples = Path(__file__).resolve().parents[2] / "examples" / "strategies"
    spec = tmp_path / "system.yaml"
    spec.write_text(f"kind: TradingSystem\nspec:\n  symbols: [BTCUSDT]\n  strategyDir: {examples}\n  strategies:\n"
                    "  - {name: fs-btc, type: fixed_spread, symbol: BTCUSDT, orderSize: '0.001',"
                    " params: {half_spread_ticks: 20}}\n")
    r, _ = backtest_json(head, "-f", str(spec))  # the spec's strategyDir, as celeris up reads it
    assert list(r["per_strategy"]) == ["fs-btc"] and r["per_strategy"]["fs-btc"]["orders"] > 0
    result = celeris("backtest", str(head), "-f", str(spec), "--json", "--sweep", "half_spread_ticks=5,40",
                     "--workers", "2")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [row["point"]["half_spread_ticks"] for row in rows] == ["5", "40"]
    assert rows[0]["result"]["fills"] > rows[1]["result"]["fills"]  # quotes nearer the touch fill more
    line = refused(celeris("backtest", str(head), "-f", str(spec), "--sweep", "half_spread_ticks=5,-1"))
    assert "half_spread_ticks=-1" in line and "half_spread_ticks" in line.split(":", 2)[-1]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == struct.unpack(">I", data[29:33])[0]
    return width, height


def test_plot_writes_the_curves_and_a_report(head, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    r, _ = backtest_json(head, "--plot", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["drawdown.png", "pnl.png", "report.md"]
    assert sorted(Path(p).name for p in r["report"]) == ["drawdown.png", "pnl.png", "report.md"]
    from PIL import Image

    for name in ("pnl.png", "drawdown.png"):
        data = (out / name).read_bytes()
        width, height = _png_size(data)
        assert width >= 800 and height >= 300 and len(data) > 20_000  # axes, ticks, labels: not a bare line
        with Image.open(out / name) as image:
            image.verify()
    report = (out / "report.md").read_text()
    assert "Sharpe" in report and "annualisation" in report and "Orders open at the end" in report
    assert r["pnl"]["net_usdt"] in report
    # A file where the directory should be is refused before the run.
    assert "directory" in refused(celeris("backtest", str(head), "--plot", str(out / "report.md")))


def test_a_sweep_is_one_table_in_grid_order(head):
    result = celeris("backtest", str(head), "--sweep", "latency_ms=0,200", "--sweep", "mm-btcusdt.requote_every=5,10",
                     "--workers", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:6] == ["latency_ms", "mm-btcusdt.requote_every", "orders", "orders_filtered",
                                    "strategy_errors", "fills"]
    assert [line.split()[:2] for line in lines[1:]] == [["0", "5"], ["0", "10"], ["200", "5"], ["200", "10"]]
    as_json = celeris("backtest", str(head), "--json", "--sweep", "latency_ms=0,200", "--workers", "2")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    rows = doc["rows"]
    assert [row["point"] for row in rows] == [{"latency_ms": "0"}, {"latency_ms": "200"}]
    assert [row["result"]["settings"]["latency_ms"] for row in rows] == [0.0, 200.0]
    # The row of latency 0 is the single backtest's result (less the curve and the timing).
    single, _ = backtest_json(head)
    assert rows[0]["result"]["pnl"] == single["pnl"] and rows[0]["result"]["fills"] == single["fills"]
    assert rows[0]["result"]["pnl"] != rows[1]["result"]["pnl"]
    # Names that cannot be a point are refused before anything runs.
    assert "no strategy named" in refused(celeris("backtest", str(head), "--sweep", "nope.requote_every=1,2"))
    assert "not a number" in refused(celeris("backtest", str(head), "--sweep", "latency_ms=0,fast"))
    refused(celeris("backtest", str(head), "--sweep", "latency_ms="))
    assert "inf" in refused(celeris("backtest", str(head), "--sweep", "latency_ms=0,inf"))
    assert "queue_model=bogus" in refused(celeris("backtest", str(head), "--sweep", "queue_model=risk_averse,bogus"))
    assert "--plot" in refused(celeris("backtest", str(head), "--sweep", "seed=1,2", "--plot", "somewhere"))


def test_a_sweep_on_a_dask_cluster_gives_the_pools_rows(head):
    distributed = pytest.importorskip("distributed")
    args = ("backtest", str(head), "--json", "--sweep", "latency_ms=0,200")
    local = json.loads(celeris(*args, "--workers", "2").stdout)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = celeris(*args, "--scheduler", cluster.scheduler_address)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["rows"] == local["rows"]


# -- what is not a capture ---------------------------------------------------------------------------
def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


NOT_CAPTURES = {
    "empty": b"",
    "empty.gz": _gzip(b""),
    "notes.txt": b"just some notes\nabout nothing\n",
    "numbers.txt": b"1 2 3\n",
    "json.gz": _gzip(b'{"a": 1}\n{"b": 2}\n'),
    "lines-of-json.gz": _gzip(b'1723161255030314667 {"not": "a frame"}\n'),
    "list.gz": _gzip(b"1723161255030314667 [1, 2]\n"),
    "binary.bin": bytes(range(256)) * 8,
    "gzip-of-binary.gz": _gzip(bytes(range(256)) * 8),
    "bad-gzip.gz": b"\x1f\x8b\x08\x00garbage that is not deflate",
    "no-symbol.gz": _gzip(b'1 {"stream": "x", "data": {"e": "depthUpdate"}}\n'),
    "unknown-symbol.gz": _gzip(b'1 {"stream": "x@trade", "data": {"e": "trade", "s": "NOPEUSDT"}}\n'),
}


@pytest.mark.parametrize("name", sorted(NOT_CAPTURES))
def test_a_file_that_is_not_a_capture_is_refused_in_one_line(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(NOT_CAPTURES[name])
    line = refused(celeris("backtest", str(path)))
    assert str(path) in line or name in line


def test_a_missing_file_a_directory_and_a_damaged_capture_are_refused(tmp_path, head):
    assert "does not exist" in refused(celeris("backtest", str(tmp_path / "nope.gz")))
    assert "directory" in refused(celeris("backtest", str(tmp_path)))
    damaged = tmp_path / "damaged.gz"
    data = head.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])  # a capture cut mid-stream: it starts well, then breaks
    assert "damaged" in refused(celeris("backtest", str(damaged)))
    assert "does not exist" in refused(celeris("replay", str(tmp_path / "nope.gz")))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=2000), st.binary(max_size=2000).map(_gzip),
                      st.text(max_size=500).map(str.encode),
                      st.lists(st.text(max_size=80), max_size=5).map(lambda ls: "\n".join(f"17 {x}" for x in ls)
                                                                        .encode()).map(_gzip)))
def test_junk_files_are_refused_by_the_command(tmp_path, data):
    path = tmp_path / "junk"
    path.write_bytes(data)
    refused(celeris("backtest", str(path)))


def test_a_failing_strategy_is_reported_and_a_plugin_that_exits_or_shadows_a_name_is_refused(head, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "boom.py").write_text("from celeris.domain.sdk import Strategy\n\n\nclass Boom(Strategy):\n"
                                     "    name = 'boom'\n\n    def on_book(self, book):\n"
                                     "        raise RuntimeError('boom')\n")
    (plugins / "exits.py").write_text("import sys\nsys.exit(3)\n")  # must not end the command
    both = ('[{"name": "b", "type": "boom", "symbol": "BTCUSDT", "order_size": "0.001"},'
            ' {"name": "mm", "type": "market_making", "symbol": "BTCUSDT", "order_size": "0.001"}]')
    r, _ = backtest_json(head, "--strategy-dir", str(plugins), "--strategies", both)
    assert r["strategy_errors"] == 5 and list(r["strategies_disabled"]) == ["b"]
    assert "on_book" in r["strategies_disabled"]["b"] and "boom" in r["strategies_disabled"]["b"]
    assert "exits.py" in r["settings"]["plugin_load_errors"] and "SystemExit" in r["settings"]["plugin_load_errors"]["exits.py"]
    assert r["per_strategy"]["mm"]["orders"] > 0 and r["orders_filtered"] >= 0 and isinstance(r["filter_reasons"], dict)
    text = celeris("backtest", str(head), "--strategy-dir", str(plugins), "--strategies", both).stdout
    assert "DISABLED   b: 5 consecutive errors" in text
    # A plugin class named like a built-in, or like another file's, is a conflict named in one line.
    (plugins / "shadow.py").write_text("from celeris.domain.sdk import Strategy\n\n\nclass M(Strategy):\n"
                                       "    name = 'market_making'\n\n\nclass B(Strategy):\n    name = 'boom'\n")
    line = refused(celeris("backtest", str(head), "--strategy-dir", str(plugins), "--strategies", both))
    assert "defined twice" in line and "shadow.py" in line


def test_lines_without_a_timestamp_or_stamped_backwards_are_counted_not_lost(head, tmp_path):
    with gzip.open(head, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)[:3000]
    stamp, _, rest = lines[2000].partition(b" ")
    earlier = int(lines[1000].partition(b" ")[0])
    damaged = lines[:1500] + [b"not a line of a capture\n", b"\n"] + lines[1500:2000] + \
        [b"%d %s" % (earlier, rest)] + lines[2001:]
    path = tmp_path / "damaged.gz"
    path.write_bytes(gzip.compress(b"".join(damaged)))
    r, _ = backtest_json(path)
    assert r["messages"] == 3000 and r["lines_skipped"] == 1 and r["lines_out_of_order"] == 1
    clean, _ = backtest_json(head)
    assert clean["lines_skipped"] == 0 and clean["lines_out_of_order"] == 0


def test_without_a_mark_price_stream_the_book_mid_is_the_mark_and_refusals_have_reasons(head, tmp_path):
    examples = Path(__file__).resolve().parents[2] / "examples"
    r, _ = backtest_json(head, "-f", str(examples / "tight-limits.yaml"))
    assert r["settings"]["mark_price"].startswith("the book's mid")  # this capture has no markPrice stream
    assert r["orders"] > 0  # price bands and market orders can be checked
    assert sum(r["refusal_reasons"].values()) == r["orders_refused"] or r["refusal_reasons"]
    assert all(code.isupper() for code in r["refusal_reasons"]) and r["warnings"] == []
    # A capture without its depth snapshot never syncs: said, not a silent zero.
    with gzip.open(head, "rb") as fh:
        lines = [line for line in fh.read().splitlines(keepends=True)[:3000] if b'"lastUpdateId"' not in line[:40]
                 and b'{"lastUpdateId"' not in line]
    nosnap = tmp_path / "nosnap.gz"
    nosnap.write_bytes(gzip.compress(b"".join(lines)))
    r, _ = backtest_json(nosnap)
    assert r["orders"] == 0 and any("never synced" in w for w in r["warnings"])


def test_what_a_strategy_prints_does_not_break_the_json_and_odd_settings_are_refused_first(head, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "talker.py").write_text("from celeris.domain.sdk import Strategy\n\n\nclass Talker(Strategy):\n"
                                       "    name = 'talker'\n\n    def on_book(self, book):\n"
                                       "        print('book', book.best_bid_ticks)\n")
    talker = '[{"name": "t", "type": "talker", "symbol": "BTCUSDT", "order_size": "0.001"}]'
    r, _ = backtest_json(head, "--strategy-dir", str(plugins), "--strategies", talker)  # one JSON line on stdout
    assert r["messages"] == HEAD_LINES
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert "cannot create" in refused(celeris("backtest", str(head), "--plot", str(blocker / "sub")))
    latencies = tmp_path / "lat.csv"
    latencies.write_text("0,5000000,5000000\n")
    assert "give one" in refused(celeris("backtest", str(head), "--latency-file", str(latencies), "--latency-ms", "5"))
    assert "--latency-file" in refused(celeris("backtest", str(head), "--latency-file", str(latencies),
                                               "--sweep", "latency_ms=0,5"))
    line = refused(celeris("backtest", str(head), "--sweep", "seed=1,2", "--scheduler", "nonsense://x"))
    assert "no Dask scheduler" in line


def test_the_docs_example_spec_backtests_without_its_limits_refusing_the_quotes(head):
    spec = Path(__file__).resolve().parents[2] / "examples" / "strategies" / "fixed-spread.yaml"
    r, _ = backtest_json(head, "-f", str(spec), "--latency-ms", "5", "--queue-model", "risk_averse", "--seed", "1")
    assert list(r["per_strategy"]) == ["fs-btc"] and r["orders"] > 500 and r["fills"] > 0
    assert "RATE_LIMIT" not in r["refusal_reasons"] and r["orders_filtered"] == 0
