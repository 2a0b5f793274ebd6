"""`celeris record`, run as a user runs it against the simulator on 127.0.0.1: the file it writes is a
capture the live sync code and `celeris replay` read (a snapshot after the first diff of each connection,
so a dropped connection is resynced from the file itself), a SIGTERM leaves a complete gzip, and an
existing capture is never overwritten without --force."""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import sys
import zlib
from pathlib import Path

import aiohttp

from celeris.marketdata.verify import verify_capture
from tests.sim.conftest import live_venue  # noqa: F401
from tests.support.waits import wait_for

CELERIS = str(Path(sys.executable).with_name("celeris"))


async def record(venue, path: Path, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        CELERIS, "record", str(path), "--venue-rest-url", venue.base_url, "--venue-ws-url", venue.ws_url, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def lines(path: Path) -> list[tuple[int, dict]]:
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            ts, _, raw = line.rstrip("\n").partition(" ")
            out.append((int(ts), json.loads(raw)))
    return out


async def test_a_recorded_capture_syncs_a_book_and_replays(live_venue, tmp_path):  # noqa: F811
    path = tmp_path / "btc.gz"
    proc = await record(live_venue, path, "--max-messages", "300", "--duration", "60", "--json")
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["messages"] == 300 and summary["snapshots"] == 1
    rows = lines(path)
    stamps = [ts for ts, _ in rows]
    assert stamps == sorted(stamps)  # receive order
    kinds = [body.get("stream", "").split("@", 1)[-1] if "stream" in body else "snapshot" for _, body in rows]
    assert {"depth@0ms", "bookTicker", "trade", "markPrice@1s", "snapshot"} <= set(kinds)
    assert kinds.index("snapshot") > kinds.index("depth@0ms")  # after the first diff, as a book syncs
    result = verify_capture(path, "BTCUSDT")
    assert result["ok"] and result["final_state"] == "live" and result["bookticker_checks"] > 0
    assert result["bookticker_mismatches"] == 0 and result["gaps"] == 0
    replay = await asyncio.create_subprocess_exec(CELERIS, "replay", str(path), stdout=asyncio.subprocess.PIPE,
                                                  stderr=asyncio.subprocess.PIPE)
    rout, rerr = await asyncio.wait_for(replay.communicate(), 120)
    assert replay.returncode == 0, rerr.decode()
    assert json.loads(rout)["messages"] == len(rows)


async def test_a_dropped_connection_is_resynced_from_the_file(live_venue, tmp_path):  # noqa: F811
    path = tmp_path / "drop.gz"
    proc = await record(live_venue, path, "--duration", "60", "--json")
    async with aiohttp.ClientSession() as session:
        # The first connection has synced (its snapshot is on disk) before it is dropped.
        assert await wait_for(lambda: _snapshots_in(path) >= 1, timeout=30, poll_s=0.1)
        first = len(live_venue.connections)
        async with session.post(f"{live_venue.base_url}/_sim/drop", json={"which": "market"}) as resp:
            assert (await resp.json())["dropped"] == first
    # The recorder reconnects (the connector's back-off starts at 1 s) and asks for a new snapshot.
    assert await wait_for(lambda: _snapshots_in(path) >= 2 and _diffs_after_last_snapshot(path) >= 5, timeout=30,
                          poll_s=0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["reconnects"] >= 1 and summary["snapshots"] >= 2
    result = verify_capture(path, "BTCUSDT")
    # The reconnect is a gap in the diffs (verify's "ok" wants none); the snapshot after it resyncs the book.
    assert result["gaps"] >= 1 and result["resyncs_completed"] >= 1, result
    assert result["final_state"] == "live" and result["bookticker_mismatches"] == 0 and result["crossed_books"] == 0


def _written(path: Path) -> bytes:
    return zlib.decompressobj(wbits=31).decompress(path.read_bytes()) if path.exists() else b""


def _diffs_after_last_snapshot(path: Path) -> int:
    return _written(path).rpartition(b'{"lastUpdateId"')[2].count(b'"depthUpdate"')


def _snapshots_in(path: Path) -> int:
    """Snapshots written so far: the gzip is being written (flushed, no trailer yet), so decompress what
    is there instead of reading it as a finished file."""
    return _written(path).count(b'{"lastUpdateId"')


async def test_sigterm_leaves_a_complete_gzip(live_venue, tmp_path):  # noqa: F811
    path = tmp_path / "term.gz"
    proc = await record(live_venue, path, "--json")
    assert await wait_for(lambda: path.exists() and path.stat().st_size > 100, timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode in (0, 1), err.decode()
    rows = lines(path)  # raises on a truncated gzip or a partial line
    assert len(rows) == json.loads(out)["messages"] + json.loads(out)["snapshots"]


async def test_an_existing_capture_is_not_overwritten(live_venue, tmp_path):  # noqa: F811
    path = tmp_path / "keep.gz"
    path.write_bytes(b"yesterday")
    proc = await record(live_venue, path, "--max-messages", "5")
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and path.read_bytes() == b"yesterday"
    assert len(err.decode().strip().splitlines()) == 1 and "--force" in err.decode()
