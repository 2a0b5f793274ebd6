"""Parameter sweeps for backtests: a grid of runs in a local process pool, or on a Dask cluster.

Owns the grid (`--sweep name=a,b,c`, repeatable: the cartesian product, in the order given, values kept
as the strings the user wrote so a decimal parameter never passes through a float), the execution of one
picklable task per point (a `concurrent.futures` process pool by default; `dask.distributed` when given a
scheduler address, e.g. a `dask-kubernetes` cluster's), and the one table of results. A point whose run
fails is reported with its error in the table; it does not stop the others. Results come back in grid
order whatever order the workers finish in, so a sweep's table is reproducible.
"""

from __future__ import annotations

import itertools
import re
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_POINTS = 10_000
"""A grid larger than this is refused: it is almost always a typo (a range pasted as a list)."""


class SweepError(ValueError):
    """A --sweep argument that cannot be a grid, with the reason in one line."""


def parse_grid(specs: Sequence[str]) -> list[dict[str, str]]:
    """["spread_bps=1,2", "latency_ms=0,5"] -> the points of their cartesian product, first name slowest."""
    axes: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not NAME.fullmatch(name):
            raise SweepError(f"--sweep {spec!r} is not name=value[,value...] (name: letters, digits, _ . -)")
        if name in axes:
            raise SweepError(f"--sweep names {name!r} twice")
        items = [v.strip() for v in values.split(",")]
        if not items or any(not v for v in items):
            raise SweepError(f"--sweep {name}: an empty value in {values!r}")
        if len(set(items)) != len(items):
            raise SweepError(f"--sweep {name}: a value is listed twice in {values!r}")
        axes[name] = items
    if not axes:
        return [{}]
    size = 1
    for items in axes.values():
        size *= len(items)
    if size > MAX_POINTS:
        raise SweepError(f"the sweep has {size:,} points (at most {MAX_POINTS:,})")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*axes.values())]


Task = Callable[[dict[str, str]], dict[str, Any]]


def _guarded(task: Task, point: dict[str, str]) -> dict[str, Any]:
    try:
        return {"point": point, "result": task(point)}
    except (Exception, SystemExit) as exc:  # one failed point is a row of the table, not the end of the sweep
        return {"point": point, "error": f"{type(exc).__name__}: {exc}"[:300]}


def run(task: Task, points: list[dict[str, str]], *, workers: int = 0, scheduler: str = "") -> list[dict[str, Any]]:
    """Each point through `task` (a module-level function: it is pickled to the workers); rows in grid
    order. workers 0 = one per CPU; 1 = in this process (no pool). `scheduler`: a Dask scheduler address."""
    if scheduler:
        return _run_dask(task, points, scheduler)
    if workers == 1 or len(points) == 1:
        return [_guarded(task, p) for p in points]
    with ProcessPoolExecutor(max_workers=workers or None) as pool:
        futures = [pool.submit(_guarded, task, p) for p in points]
        return [f.result() for f in futures]


def _run_dask(task: Task, points: list[dict[str, str]], scheduler: str) -> list[dict[str, Any]]:
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("a Dask scheduler needs dask.distributed: pip install 'celeris[sweep]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (ValueError, TypeError, OSError, TimeoutError) as exc:  # a malformed address, nothing listening
        raise SweepError(f"--scheduler {scheduler}: no Dask scheduler there ({type(exc).__name__}: "
                         f"{str(exc)[:120]})") from None
    with client:
        futures = client.map(_guarded, [task] * len(points), points, pure=False)
        return client.gather(futures)  # type: ignore[no-any-return]


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """One line per point: its parameters, then `columns` of its result (or its error)."""
    names = list(rows[0]["point"]) if rows else []
    header = names + list(columns)
    lines = [header]
    errors = []
    for row in rows:
        cells = [row["point"][n] for n in names]
        if "error" in row:  # the message below the table: in a cell it would widen a column for every row
            errors.append(f"error [{len(errors) + 1}] at " + ", ".join(f"{n}={row['point'][n]}" for n in names)
                          + f": {row['error']}")
            cells += [f"error [{len(errors)}]"] + [""] * (len(columns) - 1)
        else:
            cells += [_cell(row["result"], c) for c in columns]
        lines.append(cells)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    body = ["  ".join(str(c).rjust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(body + errors)


def _cell(result: dict[str, Any], column: str) -> str:
    value: Any = result
    for part in column.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return "" if value is None else str(value)
