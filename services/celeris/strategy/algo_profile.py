"""The recorded volume profile a VWAP follows: trade quantities per time bucket of a capture.

Owns reading a capture (hftbacktest's `<recv_ns> <raw JSON>` lines, gzip or plain, as `celeris record`
writes and `celeris replay` reads) for its trades: each trade's receive time (the capture's clock, the
one a backtest runs on) and quantity in the instrument's steps. The bucketing itself is the domain's
(celeris.domain.algo_kinds.volume_profile). Use yesterday's capture with `time_of_day` for today's
parent: a profile taken from the very trades a backtest trades against knows the future.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from celeris.domain.algo_kinds import volume_profile
from celeris.domain.instruments import Instrument


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # the caller closes it


def capture_trades(path: Path, instrument: Instrument, max_lines: int = 0) -> Iterator[tuple[int, int]]:
    """(receive time ns, quantity steps) of every trade of the instrument's symbol in the capture."""
    symbol = instrument.symbol
    with _open(path) as fh:
        for n, line in enumerate(fh, 1):
            if max_lines and n > max_lines:
                return
            if b'"trade"' not in line:
                continue
            stamp, _, raw = line.partition(b" ")
            try:
                ts = int(stamp)
                message = json.loads(raw)
            except ValueError:
                continue
            data = message.get("data", message)
            if data.get("e") == "trade" and data.get("s") == symbol:
                yield ts, instrument.qty(data["q"])


def capture_profile(path: Path, instrument: Instrument, start_ns: int, end_ns: int, buckets: int, *,
                    time_of_day: bool = False, max_lines: int = 0) -> tuple[int, ...]:
    """The traded quantity (steps) per equal bucket of [start_ns, end_ns) in the capture: a VwapParams profile."""
    return volume_profile(capture_trades(path, instrument, max_lines), start_ns, end_ns, buckets,
                          time_of_day=time_of_day)
