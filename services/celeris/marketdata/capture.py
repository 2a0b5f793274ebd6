"""Captures: telling a market-data capture from any other file, and reading one line by line.

A capture is hftbacktest's collector format, which `celeris record` also writes: gzip or plain text, one
`<receive ns> <raw JSON>` per line, the JSON a combined-stream frame (`{"stream": ..., "data": {...}}`) or a
bare REST depth snapshot (`{"lastUpdateId": ...}`). `inspect()` reads the head of a file and either names
the capture's symbol or raises CaptureError with one line saying why the file is not one (missing, empty,
not gzip nor text, a gzip of something else, no stream frame in its first lines). Reading a capture that
turns out damaged further on (a truncated gzip) raises CaptureError too, never the codec's exception.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

HEAD_LINES = 64
"""Lines read to find the capture's symbol (a snapshot or two may come before the first frame)."""
MAX_LINE = 1 << 22
"""A line longer than this (4 MiB) is not a capture line (a 1000-level snapshot is ~60 KiB)."""
LINE = re.compile(rb"^[0-9]{1,20} \{")


class CaptureError(ValueError):
    """The file is not a capture (or is damaged), with the reason in one line."""


@dataclass(frozen=True)
class CaptureInfo:
    path: Path
    symbol: str
    compressed: bool


def _opener(path: Path) -> tuple[bool, IO[bytes]]:
    try:
        with open(path, "rb") as fh:
            compressed = fh.read(2) == b"\x1f\x8b"
        return compressed, (gzip.open(path, "rb") if compressed else open(path, "rb"))
    except FileNotFoundError:
        raise CaptureError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise CaptureError(f"{path} is a directory, not a capture") from None
    except OSError as exc:
        raise CaptureError(f"{path} cannot be read ({exc.strerror or exc})") from None


def inspect(path: Path) -> CaptureInfo:
    """The capture's symbol, or CaptureError saying in one line why `path` is not a capture."""
    what = ("a capture is `<receive ns> <JSON>` lines of Binance stream frames, gzip or text, "
            "as data/binance/*.gz or `celeris record` writes")
    compressed, fh = _opener(path)
    symbol = ""
    seen = 0
    try:
        with fh:
            for _ in range(HEAD_LINES):
                line = fh.readline(MAX_LINE)
                if not line:
                    break
                seen += 1
                if not LINE.match(line) or not line.endswith(b"\n") and len(line) >= MAX_LINE:
                    raise CaptureError(f"{path}: line {seen} is not `<receive ns> <JSON>` ({what})")
                _, _, raw = line.partition(b" ")
                try:
                    message = json.loads(raw)
                except ValueError:
                    raise CaptureError(f"{path}: line {seen} is not JSON ({what})") from None
                if not isinstance(message, dict):
                    raise CaptureError(f"{path}: line {seen} is not a stream frame ({what})")
                if "lastUpdateId" in message:
                    continue
                data = message.get("data")
                if not isinstance(message.get("stream"), str) or not isinstance(data, dict):
                    raise CaptureError(f"{path}: line {seen} is not a stream frame ({what})")
                if isinstance(data.get("s"), str) and data["s"].isalnum():
                    symbol = data["s"].upper()
                    break
    except (OSError, EOFError, zlib.error) as exc:
        kind = "a damaged gzip" if compressed else "unreadable"
        raise CaptureError(f"{path} is {kind} ({str(exc)[:80] or type(exc).__name__}): not a capture") from None
    if seen == 0:
        raise CaptureError(f"{path} is empty: not a capture")
    if not symbol:
        raise CaptureError(f"{path}: no stream frame naming a symbol in its first {seen} lines ({what})")
    return CaptureInfo(path, symbol, compressed)


def lines(info: CaptureInfo, block: int = 1 << 20, skipped: list[int] | None = None) -> Iterator[tuple[int, bytes]]:
    """(receive ns, raw JSON) of every line in order; a line without a timestamp is skipped and counted in
    `skipped[0]` when given (blank lines are not counted). A file that is damaged part-way raises
    CaptureError at that point. Read in blocks: a readline per line through gzip costs a third more than
    splitting 1 MiB blocks."""
    _, fh = _opener(info.path)
    number = 0
    rest = b""
    try:
        with fh:
            while True:
                chunk = fh.read(block)
                if not chunk:
                    break
                parts = (rest + chunk).split(b"\n")
                rest = parts.pop()
                for line in parts:
                    number += 1
                    stamp, _, raw = line.partition(b" ")
                    try:
                        ts = int(stamp)
                    except ValueError:
                        if skipped is not None and line.strip():
                            skipped[0] += 1
                        continue
                    yield ts, raw
    except (OSError, EOFError, zlib.error) as exc:
        raise CaptureError(f"{info.path} is damaged after line {number} ({str(exc)[:80] or type(exc).__name__})") \
            from None
    stamp, _, raw = rest.partition(b" ")
    if stamp.isdigit():  # a last line without its newline (a recording cut short)
        yield int(stamp), raw
    elif skipped is not None and rest.strip():
        skipped[0] += 1
