"""Strategy plugins load the same way everywhere: the TradingSystem's strategyDir reaches the one builder
through the plan, and a strategy type that no source provides is refused in one line naming every known
type by where it comes from (built-in, entry points, the directory) and the plugin files that failed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from celeris.assembly import plan
from celeris.assembly.strategy import StrategyRefused, build_strategy, plugin_registry
from celeris.cli import build_parser
from celeris.commands.up import Up
from celeris.config.spec import SpecError, parse_spec
from celeris.domain.clock import TestClock
from celeris.runtime.settings import load_settings
from celeris.strategies import BUILTIN
from celeris.strategy.plugins import PluginRegistry, UnknownStrategyType
from hypothesis import given, settings
from hypothesis import strategies as st

PLUGIN = '''
from celeris.domain.signals import Signal
from celeris.domain.values import Side


class Mine:
    name = "mine"

    def initialize(self, config):
        self.symbol = config["symbol"]

    def on_market_data(self, data):
        return []

    def on_order_fill(self, fill):
        pass

    def on_position_update(self, position):
        pass

    def get_state(self):
        return {}
'''

SPEC = """
apiVersion: celeris.dev/v1alpha1
kind: TradingSystem
metadata: {name: plugins}
spec:
  symbols: [BTCUSDT]
  venue: {kind: simulator}
  strategyDir: plugins
  strategies:
    - {name: mine-btc, type: mine, symbol: BTCUSDT, orderSize: "0.001"}
"""


def plugin_dir(root: Path) -> Path:
    directory = root / "plugins"
    directory.mkdir()
    (directory / "mine.py").write_text(textwrap.dedent(PLUGIN))
    return directory


class Feed:
    def on_book(self, handler):
        self.book = handler

    def on_trade(self, handler):
        self.trade = handler

    def on_mark(self, handler):
        self.mark = handler

    async def stop(self) -> None:
        pass


def wiring(btcusdt):
    from celeris.assembly.wiring import Wiring
    from celeris.runtime import metrics
    from celeris.transport.bus import InProcessBus

    return Wiring(TestClock(), metrics.new_registry(), InProcessBus(), None, {"BTCUSDT": btcusdt})


def test_the_specs_strategy_dir_reaches_the_builder(tmp_path, btcusdt):
    directory = plugin_dir(tmp_path)
    spec = tmp_path / "system.yaml"
    spec.write_text(SPEC)
    up = Up(build_parser().parse_args(["up", "-f", str(spec)]))
    assert up.strategy_dir == str(directory)  # relative to the spec file, not to the working directory
    settings = plan.settings_for(up, "strategy", "http://127.0.0.1:1", "ws://127.0.0.1:1")
    assert settings.strategy_dir == str(directory)
    built = build_strategy(settings, wiring(btcusdt), object(), Feed(), lambda on_fill, on_order: None)
    engine = built.parts["engine"]
    assert type(engine.runners["mine-btc"].strategy).__name__ == "Mine"
    assert engine.registry.sources["mine"].kind == "file" and engine.registry.directory == directory


def test_the_flag_overrides_the_specs_strategy_dir(tmp_path, monkeypatch):
    plugin_dir(tmp_path)
    spec = tmp_path / "system.yaml"
    spec.write_text(SPEC.replace("strategyDir: plugins", "strategyDir: elsewhere"))
    monkeypatch.chdir(tmp_path)
    up = Up(build_parser().parse_args(["up", "-f", str(spec), "--strategy-dir", "plugins"]))
    assert up.strategy_dir == str(tmp_path / "plugins")
    with pytest.raises(SpecError, match="elsewhere is not a directory"):
        Up(build_parser().parse_args(["up", "-f", str(spec)]))


def test_an_unknown_type_is_refused_before_anything_starts(tmp_path, btcusdt):
    spec = tmp_path / "system.yaml"
    spec.write_text(SPEC)
    with pytest.raises(SpecError, match=r"^spec.strategyDir \(relative to the spec file; --strategy-dir overrides "
                                        r"it\): .*plugins is not a directory$"):  # strategyDir names nothing
        Up(build_parser().parse_args(["up", "-f", str(spec)]))
    plugin_dir(tmp_path)
    with pytest.raises(SpecError, match=r"unknown strategy type 'mien' \(known: built-in: market_making, "
                                        r"mean_reversion, momentum; .*plugins: mine\)"):
        Up(build_parser().parse_args(["up", "-f", str(spec), "--strategies",
                                      '[{"name": "a", "type": "mien", "symbol": "BTCUSDT", "order_size": "1"}]']))
    settings = load_settings(plan.SETTINGS["strategy"], {"strategies": '[{"name": "a", "type": "mine", '
                                  '"symbol": "BTCUSDT", "order_size": "0.001"}]'}, environ={})
    with pytest.raises(StrategyRefused, match="unknown strategy type 'mine'"):  # the builder, without the dir
        build_strategy(settings, wiring(btcusdt), object(), Feed(), lambda on_fill, on_order: None)


def test_the_refusal_names_every_source_and_what_failed_to_load(tmp_path, monkeypatch):
    directory = plugin_dir(tmp_path)
    (directory / "broken.py").write_text("def oops(:\n")
    package = tmp_path / "desk_strats_plugcfg"  # a name of its own: the module stays imported after the test
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN).replace('name = "mine"', 'name = "acme"'))
    dist = tmp_path / "desk_strats_plugcfg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: desk-strats-plugcfg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[celeris.strategies]\ndesk_echo = desk_strats_plugcfg:Mine\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = PluginRegistry(directory)
    with pytest.raises(UnknownStrategyType) as refused:
        registry.create("nope")
    message = str(refused.value)
    assert message.startswith("unknown strategy type 'nope' (known: built-in: market_making, mean_reversion, "
                              "momentum; ")
    assert "entry points: desk_echo" in message and f"{directory}: mine" in message
    assert f"{directory / 'broken.py'} failed to load (SyntaxError" in message and len(message.splitlines()) == 1
    # Still a KeyError for the callers that look a type up, and a ValueError for configuration checks.
    assert isinstance(refused.value, KeyError) and isinstance(refused.value, ValueError)
    registry.refuse_unknown(["momentum", "desk_echo", "mine"])  # every source counts


def test_an_empty_directory_is_named_too(tmp_path):
    with pytest.raises(StrategyRefused, match=rf"momentum; {tmp_path}: none\)"):
        plugin_registry(str(tmp_path), ["x"])
    with pytest.raises(StrategyRefused, match="is not a directory"):
        plugin_registry(str(tmp_path / "missing"), [])
    (tmp_path / "file.py").write_text("")
    with pytest.raises(StrategyRefused, match="is not a directory"):
        plugin_registry(str(tmp_path / "file.py"), [])


REGISTRY = PluginRegistry()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=64))
def test_any_unknown_type_is_refused_in_one_line_that_names_it(type_name):
    if type_name in REGISTRY.classes:
        REGISTRY.refuse_unknown([type_name])
        return
    with pytest.raises(UnknownStrategyType) as refused:
        REGISTRY.refuse_unknown([*BUILTIN, type_name])
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and repr(type_name) in message
    assert message.startswith(f"unknown strategy type {type_name!r} (known: built-in: ")


def test_a_configmap_needs_the_directory_it_is_mounted_at():
    base = {"symbols": ["BTCUSDT"], "venue": {"kind": "simulator"}}
    with pytest.raises(SpecError, match="set strategyDir too"):
        parse_spec({**base, "strategyConfigMap": "plugins"})
    with pytest.raises(SpecError, match="strategyConfigMap"):
        parse_spec({**base, "strategyDir": "/s", "strategyConfigMap": "Not_A_Name"})
    _, spec = parse_spec({**base, "strategyDir": "/etc/celeris/strategies", "strategyConfigMap": "plugins"})
    assert (spec.strategyDir, spec.strategyConfigMap) == ("/etc/celeris/strategies", "plugins")


def test_a_broken_file_no_strategy_needs_is_logged_once_and_the_rest_loads(tmp_path, caplog):
    directory = plugin_dir(tmp_path)
    (directory / "broken.py").write_text("import nothing_of_that_name\n")
    with caplog.at_level("ERROR"):
        registry = plugin_registry(str(directory), ["mine"])
        plugin_registry(str(directory), ["mine"], report_failures=False)  # an early check: the builder reports
    assert "mine" in registry.classes
    failures = [r.getMessage() for r in caplog.records if "failed to load" in r.getMessage()]
    assert failures == [f"strategy plugin {directory / 'broken.py'} failed to load: "
                        f"ModuleNotFoundError: No module named 'nothing_of_that_name'"]
