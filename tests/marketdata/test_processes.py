"""`celeris marketdata` as users run it: verify-capture on real data, and the service against `celeris sim`."""

import gzip
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc

from celeris.api.v1 import marketdata_pb2, marketdata_pb2_grpc
from tests.conftest import DATA
from tests.support.servers import free_port
from tests.sim.conftest import API_KEY, API_SECRET, sim_process  # noqa: F401

CELERIS = str(Path(sys.executable).with_name("celeris"))
FULL_CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"


def verify(path):
    result = subprocess.run([CELERIS, "marketdata", "verify-capture", str(path)], capture_output=True, text=True,
                            timeout=300)
    return result.returncode, json.loads(result.stdout)


def test_verify_capture_on_the_real_345s_file_finds_nothing_wrong():
    code, out = verify(FULL_CAPTURE)
    assert code == 0, out
    assert out["events"] == 93953 and out["gaps"] == 0 and out["resyncs"] == 0
    assert out["bookticker_mismatches"] == 0 and out["bookticker_checks"] > 100
    assert out["depth_events_applied"] == 6547 and out["final_state"] == "live"


def test_verify_capture_with_one_depth_event_removed_reports_the_gap_never_a_wrong_book(tmp_path):
    copy = tmp_path / "one_event_removed.gz"
    depth_seen = 0
    with gzip.open(FULL_CAPTURE, "rb") as src, gzip.open(copy, "wb") as dst:
        for line in src:
            if b'"depthUpdate"' in line:
                depth_seen += 1
                if depth_seen == 3000:
                    continue
            dst.write(line)
    code, out = verify(copy)
    assert code == 1
    assert out["gaps"] == 1 and out["resyncs"] == 1
    assert out["bookticker_mismatches"] == 0  # nothing was compared (or published) from a stale book
    assert out["final_state"] == "stale"  # no later snapshot in the file: it stays stale, and says so
    assert out["depth_events_applied"] < 6547


def test_verify_capture_counts_malformed_lines(tmp_path):
    src = DATA / "hftbacktest_usdm_btcusdt_20240808_first60s.txt.gz"
    copy = tmp_path / "malformed.txt"
    with gzip.open(src, "rb") as fh:
        lines = fh.readlines()
    lines.insert(50, b"1723161255088169167 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\"\n")
    lines.insert(60, b"not-a-timestamp {}\n")
    copy.write_bytes(b"".join(lines))
    code, out = verify(copy)
    assert out["malformed"] == 2 and out["gaps"] == 0


def test_service_process_against_the_simulator(sim_process):  # noqa: F811
    grpc_port, metrics_port = free_port(), free_port()
    env_args = ["--set", f"venue_rest_url={sim_process['rest_url']}", "--set", f"venue_ws_url={sim_process['ws_url']}",
                "--set", f"venue_api_key={API_KEY}", "--set", f"venue_api_secret={API_SECRET}",
                "--set", "symbols=BTCUSDT,ETHUSDT", "--set", f"grpc_port={grpc_port}",
                "--set", f"metrics_port={metrics_port}"]
    proc = subprocess.Popen([sys.executable, "-m", "celeris", "marketdata", "run", *env_args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/health", timeout=1) as resp:
                    health = json.loads(resp.read())
                    break
            except OSError:
                time.sleep(0.1)
        assert health and health["status"] == "ok" and health["books"]["BTCUSDT"]["state"] == "live"
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
        assert "websocket_connected 1.0" in text and "messages_received_total" in text
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = marketdata_pb2_grpc.MarketDataStub(channel)
            book = stub.GetBook(marketdata_pb2.GetBookRequest(symbol="ETHUSDT", depth=5), timeout=5)
            assert book.state == marketdata_pb2.BOOK_STATE_LIVE and len(book.bids) == 5
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert API_SECRET not in err  # secrets never reach the logs
    finally:
        proc.kill()
