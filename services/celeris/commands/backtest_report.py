"""The backtest report: PnL and drawdown curves (matplotlib) and report.md with the figures and open orders.

Reads only the backtest's result (its `curve`: equity in USDT on the 1 s grid of the capture's clock), so
a report can be drawn again from a saved `--json`. The curves' floats are a plot's y values: the float
edge of the money path, never fed back. matplotlib is the `report` extra; it runs headless (Agg).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

NS_PER_S = 1_000_000_000


def _curves(result: dict[str, Any]) -> tuple[list[float], list[float], list[float]]:
    t = [float(x) for x in result["curve"]["t"]]
    equity = [Decimal(e) for e in result["curve"]["equity"]]
    peak = None
    drawdown = []
    for value in equity:
        peak = value if peak is None or value > peak else peak
        drawdown.append(value - peak)
    return t, [float(e) for e in equity], [float(d) for d in drawdown]


def _start_utc(result: dict[str, Any]) -> str:
    ts = int(result.get("start_utc_ns") or 0)
    return datetime.fromtimestamp(ts // NS_PER_S, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _figure(kind: str, result: dict[str, Any], ax: Any) -> None:
    t, equity, drawdown = _curves(result)
    where = f"{result['symbol']} from {_start_utc(result)}"
    if kind == "pnl":
        ax.plot(t, equity, color="#1f6feb", linewidth=1.2, label="net PnL (realized - fees + funding + unrealized)")
        ax.axhline(0, color="#888888", linewidth=0.8)
        ax.set_title(f"Net PnL, {where}")
        ax.set_ylabel("net PnL (USDT)")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.fill_between(t, drawdown, 0, color="#d1242f", alpha=0.35)
        ax.plot(t, drawdown, color="#d1242f", linewidth=1.0)
        ax.set_title(f"Drawdown from the running peak, {where} "
                     f"(max {result['stats']['max_drawdown_usdt']} USDT)")
        ax.set_ylabel("drawdown (USDT)")
    ax.set_xlabel("time since the capture's first message (s)")
    ax.grid(True, alpha=0.3)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(path: Path, result: dict[str, Any]) -> Path:
    """Both curves in one PNG (two panels sharing the time axis)."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    _figure("pnl", result, top)
    _figure("drawdown", result, bottom)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def write(directory: Path, result: dict[str, Any]) -> list[Path]:
    """pnl.png, drawdown.png and report.md in `directory` (made if missing); returns the files."""
    plt = _pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for kind in ("pnl", "drawdown"):
        fig, ax = plt.subplots(figsize=(10, 4))
        _figure(kind, result, ax)
        fig.tight_layout()
        path = directory / f"{kind}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        files.append(path)
    report = directory / "report.md"
    report.write_text(markdown(result))
    files.append(report)
    return files


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def markdown(r: dict[str, Any]) -> str:
    s, pnl = r["stats"], r["pnl"]
    rows = [("messages", f"{r['messages']:,} over {r['capture_seconds']} s"),
            ("settings", f"latency {r['settings']['latency_ms']} ms, queue model {r['settings']['queue_model']}, "
                         f"seed {r['settings']['seed']}"),
            ("orders / fills", f"{r['orders']} / {r['fills']} ({r['orders_refused']} refused)"),
            ("net PnL (USDT)", pnl["net_usdt"]), ("realized (USDT)", pnl["realized_usdt"]),
            ("fees (USDT)", pnl["fees_usdt"]), ("funding (USDT)", pnl["funding_usdt"]),
            ("unrealized (USDT)", pnl["unrealized_usdt"]),
            ("Sharpe", s["sharpe"]), ("Sortino", s["sortino"]), ("annualisation", s["annualisation"]),
            ("max drawdown (USDT)", s["max_drawdown_usdt"]), ("turnover (USDT)", s["turnover_usdt"]),
            ("fill ratio", s["fill_ratio"]), ("maker share", s["maker_share"])]
    rows += [(f"markout {h} (bps / USDT per unit, fills)", f"{_v(m['mean_bps'])} / {_v(m['mean_usdt'])}, {m['fills']}")
             for h, m in s["markouts"].items()]
    out = [f"# Backtest of {r['file']} ({r['symbol']}, from {_start_utc(r)})", "",
           "| figure | value |", "| --- | --- |"]
    out += [f"| {k} | {_v(v)} |" for k, v in rows]
    out += ["", "![net PnL](pnl.png)", "", "![drawdown](drawdown.png)", "", "## Per strategy", "",
            "| strategy | orders | fills | PnL (USDT) | maker share | fill ratio | markout 1 s / 10 s / 60 s (bps) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    out += [f"| {n} | {p['orders']} | {p['fills']} | {p['pnl_usdt']} | {p['maker_share']} | {p['fill_ratio']} | "
            + " / ".join(_v(p["markouts"][h]["mean_bps"]) for h in ("1s", "10s", "60s")) + " |"
            for n, p in r["per_strategy"].items()]
    out += ["", "## Orders open at the end", ""]
    if r["open_orders_at_end"]:
        out += ["| strategy | side | price | open qty | client order id |", "| --- | --- | --- | --- | --- |"]
        out += [f"| {o['strategy']} | {o['side']} | {o['price']} | {o['open_qty']} | {o['client_order_id']} |"
                for o in r["open_orders_at_end"]]
    else:
        out.append("none")
    out += ["", "## Execution algorithms (slippage against the arrival mid; positive = cost)", ""]
    if r.get("algos"):
        out += ["| algo | strategy | kind | side | qty | filled | average price | arrival price | slippage (bps) | state |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        out += [f"| {a['algo_id']} | {a['owner']} | {a['kind']} | {a['side']} | {a['qty']} | {a['filled']} | "
                f"{_v(a['average_price'])} | {_v(a['arrival_price'])} | {_v(a['slippage_bps'])} | {a['state']} |"
                for a in r["algos"]]
    else:
        out.append("none")
    out += ["", "## Definitions", ""] + [f"- **{k}**: {v}" for k, v in s["definitions"].items()]
    return "\n".join(out) + "\n"
