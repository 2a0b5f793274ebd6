"""The TradingSystem spec model: the same fields as the CRD, strict where a typo is dangerous, exact money."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from celeris.config.spec import RiskSpec, SpecError, StrategySpec, TradingSystemSpec, VenueSpec, load_spec, parse_spec
from celeris.domain.values import MONEY_SCALE

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "k8s" / "crds" / "tradingsystems.celeris.dev.yaml"
CELERIS = str(Path(sys.executable).with_name("celeris"))


def crd_spec_schema():
    crd = yaml.safe_load(CRD.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_the_model_has_exactly_the_crds_fields():
    schema = crd_spec_schema()
    assert set(schema["properties"]) == set(TradingSystemSpec.model_fields)
    assert set(schema["properties"]["venue"]["properties"]) == set(VenueSpec.model_fields)
    assert set(schema["properties"]["risk"]["properties"]) == set(RiskSpec.model_fields)
    assert set(schema["properties"]["strategies"]["items"]["properties"]) == set(StrategySpec.model_fields)
    # The defaults agree where both give one.
    for name, prop in schema["properties"]["risk"]["properties"].items():
        if "default" in prop:
            assert RiskSpec.model_fields[name].default == prop["default"], name


def test_the_sample_parses_and_limits_are_exact_money():
    name, spec = load_spec(ROOT / "k8s" / "samples" / "btc-perp.yaml")
    assert name == "btc-perp" and spec.symbols == ["BTCUSDT", "ETHUSDT"] and spec.risk.maxLeverage == 5
    limits = RiskSpec(maxPositionUsdt="1000.10", maxDailyLossUsdt="0.00000001").exposure_limits()
    assert limits.max_position_notional == 100_010 * 10**(MONEY_SCALE - 2)
    assert limits.max_daily_loss == 1


@pytest.mark.parametrize("spec,message", [
    ({"symbols": ["BTCUSDT"], "risk": {"maxPositonUsdt": "10"}}, "maxPositonUsdt"),
    ({"symbols": ["BTCUSDT"], "risk": {"maxPositionUsdt": "1e3"}}, "maxPositionUsdt"),
    ({"symbols": ["BTCUSDT"], "venue": {"kind": "binance-usdm"}}, "restUrl"),
    ({"symbols": ["BTCUSDT"], "strategies": [{"name": "a", "type": "momentum", "symbol": "ETHUSDT",
                                               "orderSize": "1"}]}, "not in symbols"),
    ({"symbols": ["BTCUSDT"], "strategies": [{"name": "a", "type": "momentum", "symbol": "BTCUSDT",
                                               "orderSize": "1"}] * 2}, "share a name"),
    ({"symbols": ["BTCUSDT"], "strategies": [{"name": "a", "type": "momentum", "symbol": "BTCUSDT",
                                               "orderSize": "0.000"}]}, "positive"),
    ({"symbols": ["btcusdt"]}, "venue symbol"),
    ({"symbols": []}, "symbols"),
])
def test_nonsense_is_refused_with_the_field_named(spec, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({"apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem", "metadata": {"name": "x"},
                    "spec": spec})


def test_a_simulator_venue_needs_no_urls_and_a_bare_spec_is_accepted():
    name, spec = parse_spec({"symbols": ["BTCUSDT"], "venue": {"kind": "simulator"}})
    assert spec.venue.kind == "simulator" and name == "celeris"
    with pytest.raises(SpecError, match="not TradingSystem"):
        parse_spec({"kind": "Deployment", "spec": {}})


def test_celeris_up_refuses_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: TradingSystem\nspec: {symbols: [BTCUSDT], risk: {maxLeverage: 500}}\n")
    result = subprocess.run([CELERIS, "up", "-f", str(bad), "--duration", "1"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "spec.risk.maxLeverage" in result.stderr
    missing = subprocess.run([CELERIS, "up", "-f", str(tmp_path / "nope.yaml")], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
