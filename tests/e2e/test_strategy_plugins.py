"""A quant's own strategy, as a user runs it: a plugin file in a directory, `celeris up --strategy-dir DIR`
in either topology, the strategy seen deciding through the strategy engine's gRPC service; and a type
that no plugin source provides refused before anything starts, in one line, exit code 2 — by `celeris up`
(flag or spec) and by a `celeris strategy run` process (settings or the desired state a pod reads)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from celeris.api.v1 import strategy_pb2, strategy_pb2_grpc

from tests.support.waits import until

CELERIS = str(Path(sys.executable).with_name("celeris"))
PLUGIN = '''
from celeris.domain.signals import Signal
from celeris.domain.values import Side


class EveryTwentieth:
    """Buys on every 20th book it sees."""
    name = "every_twentieth"

    def __init__(self):
        self.seen = 0

    def initialize(self, config):
        self.symbol = config["symbol"]

    def on_market_data(self, data):
        self.seen += 1
        if self.seen % 20:
            return []
        return [Signal(self.symbol, Side.BUY, 1.0, self.name, data.ts_event_ns, reason="every 20th book")]

    def on_order_fill(self, fill):
        pass

    def on_position_update(self, position):
        pass

    def get_state(self):
        return {"seen": self.seen}
'''
MINE = [{"name": "mine-btc", "type": "every_twentieth", "symbol": "BTCUSDT", "order_size": "0.001"}]


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    directory = tmp_path / "strategies"
    directory.mkdir()
    (directory / "every_twentieth.py").write_text(textwrap.dedent(PLUGIN))
    return directory


def _start(topology: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    """`celeris up` until its banner; the strategy engine's gRPC target."""
    proc = subprocess.Popen([CELERIS, "up", "--topology", topology, "--symbols", "BTCUSDT", "--duration", "180",
                             "--json", "--dashboard-port", "0", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    target = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        lines.append(line)
        match = re.search(r"^\s+(?:gRPC|strategy)\s+(127\.0\.0\.1:\d+)", line)
        if match:
            target = match.group(1)
        if "Ctrl-C" in line:
            break
    assert target, "".join(lines)[-3000:]
    return proc, target


async def _deciding(target: str) -> strategy_pb2.StrategyInfo | None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = strategy_pb2_grpc.StrategyEngineStub(channel)

        async def listed() -> strategy_pb2.StrategyInfo | None:
            reply = await stub.ListStrategies(strategy_pb2.ListStrategiesRequest(), timeout=5)
            mine = [s for s in reply.strategies if s.name == "mine-btc"]
            return mine[0] if mine and mine[0].signals >= 2 else None

        return await until(listed, timeout=90)


@pytest.mark.parametrize("topology", ["inproc", "services"])
def test_celeris_up_runs_a_plugin_from_the_strategy_dir(plugins: Path, topology: str):
    proc, target = _start(topology, "--strategy-dir", str(plugins), "--strategies", json.dumps(MINE))
    try:
        info = asyncio.run(_deciding(target))
        assert info is not None, "the plugin strategy never decided"
        assert info.type == "every_twentieth" and info.enabled and info.errors == 0
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(out)["mode"] == "live"


def _one_line_refusal(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_celeris_up_refuses_an_unknown_type_in_one_line(plugins: Path, tmp_path: Path):
    unknown = [{**MINE[0], "type": "mine"}]
    started = time.monotonic()
    flag = subprocess.run([CELERIS, "up", "--duration", "30", "--strategies", json.dumps(unknown)],
                          capture_output=True, text=True, timeout=60)
    _one_line_refusal(flag, "unknown strategy type 'mine'", "built-in: market_making, mean_reversion, momentum")
    (plugins / "mine.py").write_text("class Mine(:\n")  # the file that should have provided it
    with_dir = subprocess.run([CELERIS, "up", "--duration", "30", "--strategy-dir", str(plugins),
                               "--strategies", json.dumps(unknown)], capture_output=True, text=True, timeout=60)
    _one_line_refusal(with_dir, "unknown strategy type 'mine'", f"{plugins}: every_twentieth",
                      f"{plugins / 'mine.py'} failed to load (SyntaxError")
    spec = tmp_path / "system.yaml"
    spec.write_text(textwrap.dedent(f"""\
        kind: TradingSystem
        metadata: {{name: mine}}
        spec:
          symbols: [BTCUSDT]
          strategyDir: {plugins.name}
          strategies:
            - {{name: mine-btc, type: every_twentiet, symbol: BTCUSDT, orderSize: "0.001"}}
        """))
    from_spec = subprocess.run([CELERIS, "up", "-f", str(spec), "--duration", "30"], capture_output=True, text=True,
                               timeout=60)
    _one_line_refusal(from_spec, f"{spec}: unknown strategy type 'every_twentiet'", f"{plugins}: every_twentieth")
    assert time.monotonic() - started < 45  # refused at start: no run of 30 s happened


def test_a_strategy_process_refuses_an_unknown_type_in_one_line(plugins: Path, tmp_path: Path):
    """Before it opens anything (no venue answers here): from its settings, or from the desired state a pod reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIS_")}
    env.update(CELERIS_VENUE_REST_URL="http://127.0.0.1:9", CELERIS_STRATEGY_DIR=str(plugins))
    unknown = [{**MINE[0], "type": "mine"}]
    from_settings = subprocess.run([CELERIS, "strategy", "run", "--set", f"strategies={json.dumps(unknown)}"],
                                   capture_output=True, text=True, timeout=60, env=env)
    _one_line_refusal(from_settings, "unknown strategy type 'mine'", f"{plugins}: every_twentieth")
    desired = tmp_path / "desired.json"
    desired.write_text(json.dumps({"generation": 1, "mode": "observation", "halted": False, "settings": {
        "strategies": [{"name": "x", "type": "theirs", "symbol": "BTCUSDT", "orderSize": "0.001"}]}}))
    from_desired = subprocess.run([CELERIS, "strategy", "run"], capture_output=True, text=True, timeout=60,
                                  env={**env, "CELERIS_DESIRED_STATE": str(desired)})
    _one_line_refusal(from_desired, "unknown strategy type 'theirs'", "momentum")
