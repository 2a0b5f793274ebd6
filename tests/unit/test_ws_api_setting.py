"""venue.wsApiUrl / --venue-ws-api-url reach execution's settings through the one plan (both topologies use
it; the operator's pods get the same key): the bundled simulator's /ws-fapi/v1 by default, the flag or the
spec otherwise, `off` for REST, and only execution takes it."""

from __future__ import annotations

import pytest
from celeris.assembly import plan
from celeris.cli import build_parser
from celeris.commands.up import Up
from celeris_operator import builders

SIM_WS = "ws://127.0.0.1:4242"
REAL = ["--venue-rest-url", "https://demo-fapi.binance.com", "--venue-ws-url", "wss://fstream.binancefuture.com"]


def up_with(tmp_path, *flags, venue=""):
    argv = ["up", *flags]
    if venue:
        spec = tmp_path / "system.yaml"
        spec.write_text(f"apiVersion: celeris.dev/v1alpha1\nkind: TradingSystem\nmetadata: {{name: t}}\n"
                        f"spec:\n  symbols: [BTCUSDT]\n  venue: {venue}\n")
        argv += ["-f", str(spec)]
    return Up(build_parser().parse_args(argv))


@pytest.mark.parametrize(("flags", "venue", "expected"), [
    ((), "", f"{SIM_WS}/ws-fapi/v1"),  # the bundled simulator: its WebSocket API
    (("--venue-ws-api-url", "off"), "", ""),
    (REAL, "", ""),  # a real venue without one: REST
    ((*REAL, "--venue-ws-api-url", "wss://ws-fapi.binance.com/ws-fapi/v1"), "",
     "wss://ws-fapi.binance.com/ws-fapi/v1"),
    ((), "{kind: binance-usdm, restUrl: 'https://x', wsUrl: 'wss://y', wsApiUrl: 'wss://z/ws-fapi/v1'}",
     "wss://z/ws-fapi/v1"),
    (("--venue-ws-api-url", "off"), "{kind: binance-usdm, restUrl: 'https://x', wsUrl: 'wss://y', "
                                    "wsApiUrl: 'wss://z/ws-fapi/v1'}", ""),
])
def test_the_ws_api_url_reaches_executions_settings_only(tmp_path, flags, venue, expected):
    up = up_with(tmp_path, *flags, venue=venue)
    ws_api_url = up.ws_api_url(SIM_WS)
    assert ws_api_url == expected
    settings = plan.settings_for(up, "execution", "http://127.0.0.1:1", SIM_WS, ws_api_url)
    assert settings.venue_ws_api_url == expected
    for other in ("marketdata", "strategy", "risk", "account"):
        assert "venue_ws_api_url" not in plan.settings_keys(up, other, "http://127.0.0.1:1", SIM_WS, ws_api_url)


def test_a_bad_flag_value_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--venue-ws-api-url", "http://not-a-websocket"])
    assert "ws:// or wss://" in capsys.readouterr().err


def body(venue):
    return {"metadata": {"name": "t", "namespace": "ns"},
            "spec": {"image": "celeris:x", "symbols": ["BTCUSDT"], "venue": venue}}


def test_the_operator_gives_execution_pods_the_same_key():
    bundled = builders.settings_for(body({"kind": "simulator"}), "execution")
    assert bundled["CELERIS_VENUE_WS_API_URL"] == bundled["CELERIS_VENUE_WS_URL"] + "/ws-fapi/v1"
    real = {"kind": "binance-usdm", "restUrl": "https://x", "wsUrl": "wss://y"}
    assert "CELERIS_VENUE_WS_API_URL" not in builders.settings_for(body(real), "execution")
    configured = builders.settings_for(body({**real, "wsApiUrl": "wss://z/ws-fapi/v1"}), "execution")
    assert configured["CELERIS_VENUE_WS_API_URL"] == "wss://z/ws-fapi/v1"
    assert "CELERIS_VENUE_WS_API_URL" not in builders.settings_for(body({**real, "wsApiUrl": "wss://z"}), "strategy")
