"""Order latency models of the paper venue, on the event clock: entry (client -> venue) and response
(venue -> client) latencies in integer nanoseconds, as hftbacktest's LatencyModel defines them.

- `ConstantLatency(entry_ns, response_ns)`: hftbacktest's ConstantLatency.
- `InterpolatedLatency(rows)`: hftbacktest's IntpOrderLatency over recorded latencies. A row is
  (timestamp_ns, entry_ns, response_ns): at `timestamp_ns` a request took `entry_ns` to reach the venue
  and its answer `response_ns` to come back. Between two rows the latency is interpolated linearly
  (integer arithmetic) at the request's time (entry) or the venue's time (response); before the first
  row the first row's latency holds, after the last the last's.

`load_latency_file(path)` reads rows from a CSV (`timestamp_ns,entry_ns,response_ns`, a header line
allowed) or a JSONL file (objects with those keys, or 3-element arrays). Negative latencies are refused
(hftbacktest reads them as rejections; we do not model those).
"""

from __future__ import annotations

import bisect
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

FIELDS = ("timestamp_ns", "entry_ns", "response_ns")


class LatencyModel(Protocol):
    def entry_ns(self, ts_ns: int) -> int:
        """How long a request sent at ts_ns takes to reach the venue."""
        ...

    def response_ns(self, ts_ns: int) -> int:
        """How long the venue's answer (ack, fill) produced at ts_ns takes to reach the client."""
        ...


@dataclass(frozen=True)
class ConstantLatency:
    entry: int
    response: int

    def entry_ns(self, ts_ns: int) -> int:
        return self.entry

    def response_ns(self, ts_ns: int) -> int:
        return self.response


class InterpolatedLatency:
    def __init__(self, rows: Sequence[tuple[int, int, int]]) -> None:
        if not rows:
            raise ValueError("recorded latencies: no rows")
        ordered = sorted((int(t), int(e), int(r)) for t, e, r in rows)
        if any(e < 0 or r < 0 for _, e, r in ordered):
            raise ValueError("recorded latencies: a latency is negative")
        self._ts = [t for t, _, _ in ordered]
        self._entry = [e for _, e, _ in ordered]
        self._response = [r for _, _, r in ordered]

    def _at(self, ys: list[int], ts_ns: int) -> int:
        xs = self._ts
        i = bisect.bisect_right(xs, ts_ns)
        if i == 0:
            return ys[0]
        if i == len(xs):
            return ys[-1]
        x1, x2, y1, y2 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y1 + (y2 - y1) * (ts_ns - x1) // (x2 - x1)

    def entry_ns(self, ts_ns: int) -> int:
        return self._at(self._entry, ts_ns)

    def response_ns(self, ts_ns: int) -> int:
        return self._at(self._response, ts_ns)


def load_latency_file(path: Path) -> InterpolatedLatency:
    """Recorded latencies from CSV or JSONL (see the module docstring); a malformed line: ValueError."""
    rows: list[tuple[int, int, int]] = []
    text = Path(path).read_text()
    if path.suffix in (".jsonl", ".json", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                values = [item[k] for k in FIELDS] if isinstance(item, dict) else list(item)
                t, e, r = (int(v) for v in values)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a latency row ({', '.join(FIELDS)})") from exc
            rows.append((t, e, r))
    else:
        for n, record in enumerate(csv.reader(text.splitlines()), 1):
            if not record or (n == 1 and record[0].strip() == FIELDS[0]):
                continue
            try:
                t, e, r = (int(v) for v in record)
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: not a latency row ({', '.join(FIELDS)})") from exc
            rows.append((t, e, r))
    return InterpolatedLatency(rows)
