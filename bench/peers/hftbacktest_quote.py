"""The fixed-spread quoting strategy on hftbacktest, for the cross-check with `celeris backtest`.

Run in the peers environment (`scripts/install --bench` makes `.venv/peers`), never imported by Celeris:
    .venv/peers/bin/python bench/peers/hftbacktest_quote.py CAPTURE --half-spread-ticks 20 --qty 0.001 \
        --latency-ms 5 --interval-ms 100 --json

The strategy (the same rules as examples/strategies/fixed_spread.py on the Celeris side): every
`interval` it cancels its quotes and places a post-only (GTX) bid at best_bid - half_spread and ask at
best_ask + half_spread, `qty` each, while |position| < max_position; a side at the limit is not quoted.
Market data comes from hftbacktest's own converter of the same capture; latency is constant (feed:
the recorded receive time; order entry and response: `latency-ms` each); the queue model by name
(`risk_averse` = RiskAdverseQueueModel, `power:N` = PowerProbQueueModel(N), `log` = LogProbQueueModel);
fees maker 0.02 % / taker 0.04 % (the paper venue's); `--exchange partial` (default) fills our order by
at most a trade's size, as Celeris's paper venue does; `no_partial` is hftbacktest's whole-order fill.
Prints fills, position, PnL (quote units: realized + marked at the last mid, before and after fees).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hftbacktest import BUY, GTX, LIMIT, SELL, BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.utils import binancefutures


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("capture", type=Path)
    p.add_argument("--half-spread-ticks", type=int, default=20)
    p.add_argument("--qty", type=float, default=0.001)
    p.add_argument("--max-position", type=float, default=0.01)
    p.add_argument("--latency-ms", type=float, default=5.0)
    p.add_argument("--interval-ms", type=int, default=100)
    p.add_argument("--tick", type=float, default=0.1)
    p.add_argument("--lot", type=float, default=0.001)
    p.add_argument("--queue-model", default="risk_averse", help="risk_averse | power[:N] | log (as celeris backtest)")
    p.add_argument("--exchange", choices=("partial", "no_partial"), default="partial",
                   help="partial: a trade fills at most its own size (as Celeris's paper venue)")
    p.add_argument("--maker-fee", type=float, default=0.0002)
    p.add_argument("--taker-fee", type=float, default=0.0004)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "capture.npz"
        binancefutures.convert(str(args.capture), str(npz), combined_stream=True)
        latency_ns = int(args.latency_ms * 1_000_000)
        asset = BacktestAsset().data([str(npz)]).linear_asset(1.0).constant_order_latency(latency_ns, latency_ns)
        name, _, n = args.queue_model.partition(":")
        if name == "risk_averse":
            asset = asset.risk_adverse_queue_model()
        elif name == "power":
            asset = asset.power_prob_queue_model(float(n or 2))
        elif name == "log":
            asset = asset.log_prob_queue_model()
        else:
            p.error(f"unknown queue model {args.queue_model!r}")
        asset = asset.partial_fill_exchange() if args.exchange == "partial" else asset.no_partial_fill_exchange()
        asset = (asset.trading_value_fee_model(args.maker_fee, args.taker_fee)
                 .tick_size(args.tick).lot_size(args.lot).last_trades_capacity(0))
        hbt = HashMapMarketDepthBacktest([asset])
        result = run(hbt, args)
        hbt.close()
    result["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(result) if args.json else result)
    return 0


def run(hbt, args) -> dict:
    next_id = 1
    quotes: list[int] = []
    last_mid = 0.0
    interval_ns = args.interval_ms * 1_000_000
    fills = 0
    seen_filled: set[int] = set()
    while hbt.elapse(interval_ns) == 0:
        orders = hbt.orders(0)
        values = orders.values()
        while values.has_next():
            order = values.get()
            if order.status == 3 and order.order_id not in seen_filled:  # FILLED
                seen_filled.add(order.order_id)
                fills += 1
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        bid, ask = depth.best_bid, depth.best_ask
        if not (np.isfinite(bid) and np.isfinite(ask)) or bid <= 0 or ask <= bid:
            continue
        last_mid = (bid + ask) / 2
        for order_id in quotes:
            hbt.cancel(0, order_id, False)
        quotes = []
        position = hbt.position(0)
        if position < args.max_position - 1e-12:
            hbt.submit_buy_order(0, next_id, bid - args.half_spread_ticks * args.tick, args.qty, GTX, LIMIT, False)
            quotes.append(next_id)
            next_id += 1
        if position > -args.max_position + 1e-12:
            hbt.submit_sell_order(0, next_id, ask + args.half_spread_ticks * args.tick, args.qty, GTX, LIMIT,
                                  False)
            quotes.append(next_id)
            next_id += 1
    state = hbt.state_values(0)
    position = hbt.position(0)
    equity_before_fees = state.balance + position * last_mid
    return {"peer": "hftbacktest", "orders": next_id - 1, "filled_orders": fills, "fills": int(state.num_trades),
            "position": round(position, 6), "pnl_before_fees": round(equity_before_fees, 8),
            "fees": round(state.fee, 8), "pnl": round(equity_before_fees - state.fee, 8),
            "trading_volume": round(state.trading_volume, 6), "last_mid": last_mid}


if __name__ == "__main__":
    sys.exit(main())
