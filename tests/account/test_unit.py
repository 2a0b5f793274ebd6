"""The account monitor's arithmetic, events, alerts and reconciliation with a scripted venue."""

import json
from decimal import Decimal
from fractions import Fraction


from celeris.account.engine import AccountConfig, AccountMonitor, AlertThresholds, VenueAccount
from celeris.domain.clock import TestClock
from celeris.venues.binance import codec
from tests.conftest import SAMPLES

M = 10**8


class Venue:
    def __init__(self, wallet=10_000, positions=None, marks=None):
        self.state = VenueAccount(wallet * M, positions or {}, marks or {"BTCUSDT": Fraction(60_000)}, {"BTCUSDT": 20})

    async def account(self):
        return self.state


class Halter:
    def __init__(self):
        self.reasons = []

    async def halt(self, reason):
        self.reasons.append(reason)


def make(btcusdt, venue=None, **config):
    clock = TestClock()
    venue = venue or Venue()
    halter = Halter()
    monitor = AccountMonitor({"BTCUSDT": btcusdt}, clock, venue, halter, AccountConfig(confirm_delay_s=0, **config))
    return monitor, venue, halter, clock


def update(positions, wallet="10000.00000000", reason="ORDER"):
    return codec.decode_user_event(json.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {
        "m": reason, "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}],
        "P": [{"s": s, "pa": pa, "ep": ep, "up": "0", "mt": "cross", "ps": ps} for s, pa, ep, ps in positions]}}))


def trade(rp, n, x="TRADE"):
    return codec.decode_user_event(json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {
        "s": "BTCUSDT", "c": "c1", "S": "SELL", "o": "MARKET", "f": "GTC", "q": "0.100", "p": "0", "ap": "60000",
        "x": x, "X": "FILLED", "i": 1, "l": "0.100", "z": "0.100", "L": "60000.00", "N": "USDT", "n": n,
        "T": 1, "t": 7, "m": False, "R": False, "ps": "BOTH", "rp": rp}}))


async def test_pnl_from_events_and_marks(btcusdt):
    monitor, _, _, _ = make(btcusdt)
    await monitor.start()
    monitor.on_user_event(update([("BTCUSDT", "0.500", "58000.0", "BOTH")], wallet="10100.00000000"))
    monitor.on_user_event(trade("150.00000000", "2.40000000"))
    monitor.on_user_event(trade("-50.00000000", "2.40000000"))
    monitor.on_user_event(trade("0", "1.00000000"))  # an opening fill: neither a win nor a loss
    pnl = monitor.pnl()
    assert pnl["unrealized"] == Fraction(1_000)  # (60,000 - 58,000) x 0.5
    assert pnl["realized"] == 100 and pnl["fees"] == Fraction(58, 10)
    assert pnl["total"] == 100 + 1_000 - Fraction(58, 10)
    assert pnl["win_rate_pct"] == 50
    assert monitor.equity() == 10_100 + 1_000
    # 30,000 notional x 2.5 % over 11,100, in ppm rounded up (a limit is never passed by rounding)
    assert monitor.ledger.margin_ratio_ppm() == -(-750 * 10**6 // 11_100) == 67_568
    assert monitor.margin_ratio() == Decimal("0.067568")
    assert all(isinstance(v, int) for v in (monitor.ledger.equity(), monitor.stats.realized, monitor.stats.fees))
    await monitor.stop()


async def test_hedge_mode_positions_are_not_collapsed(btcusdt):
    monitor, _, _, _ = make(btcusdt)
    await monitor.start()
    raw = json.loads((SAMPLES / "nautilus/rs_account_update.json").read_text())
    monitor.on_user_event(codec.decode_user_event(json.dumps(raw)))
    keys = {k: p.qty_steps for k, p in monitor.positions.items()}
    assert keys[("BTCUSDT", "LONG")] == 20_000 and keys[("BTCUSDT", "SHORT")] == -10_000
    assert keys[("BTCUSDT", "BOTH")] == 0
    await monitor.stop()


async def test_funding_payments_are_tracked(btcusdt):
    monitor, _, _, _ = make(btcusdt)
    await monitor.start()
    monitor.on_user_event(update([], wallet="9995.00000000", reason="FUNDING_FEE"))
    assert monitor.pnl()["funding"] == -5
    await monitor.stop()


async def test_reconciliation_venue_wins_small_mismatch_alerts_large_one_halts(btcusdt):
    venue = Venue(positions={("BTCUSDT", "BOTH"): (1000, Fraction(60_000))})
    monitor, venue, halter, clock = make(btcusdt, venue)
    await monitor.start()
    assert await monitor.reconcile() == []
    venue.state.positions[("BTCUSDT", "BOTH")] = (1020, Fraction(60_000))  # 2 %
    found = await monitor.reconcile()
    assert len(found) == 1 and "1.96 %" in found[0]  # of the larger of the two
    assert monitor.positions[("BTCUSDT", "BOTH")].qty_steps == 1020  # the venue wins
    assert halter.reasons == [] and monitor.alerts[-1].severity == "error"
    venue.state.positions[("BTCUSDT", "BOTH")] = (1200, Fraction(60_000))  # 15 %
    clock.advance(s=61)
    await monitor.reconcile()
    assert halter.reasons and "mismatch" in halter.reasons[0]
    assert monitor.recon.mismatches == 2 and monitor.recon.worst_pct > 5
    venue.state.wallet += 5 * M
    assert any("wallet" in f for f in await monitor.reconcile())
    await monitor.stop()


async def test_alert_thresholds_rate_limits_and_acknowledgement(btcusdt):
    venue = Venue(wallet=2_000, positions={("BTCUSDT", "BOTH"): (1000, Fraction(60_000))},
                  marks={"BTCUSDT": Fraction(58_600)})
    thresholds = AlertThresholds(margin_ratio=Fraction(1, 2), liquidation_proximity_pct=Fraction(5),
                                 max_position_usdt=Fraction(10_000))
    monitor, _, _, clock = make(btcusdt, venue, thresholds=thresholds)
    await monitor.start()
    await monitor.reconcile()
    kinds = {a.kind.split(":")[0] for a in monitor.alerts}
    assert {"margin_ratio", "liquidation", "position_size"} <= kinds
    count = len(monitor.alerts)
    await monitor.reconcile()
    assert len(monitor.alerts) == count  # suppressed within 60 s
    for i in range(20):
        monitor.alert("system", "info", f"burst:{i}", "x")
    assert sum(1 for a in monitor.alerts if a.kind.startswith("burst")) == 10  # per-type cap per minute
    alert = monitor.alerts[0]
    assert monitor.acknowledge(alert.id, "dana").acknowledged_by == "dana"
    assert monitor.acknowledge("nope", "dana") is None
    await monitor.stop()


async def test_drawdown_and_sharpe(btcusdt):
    venue = Venue(wallet=10_000)
    monitor, venue, _, _ = make(btcusdt, venue)
    await monitor.start()
    for wallet in (10_500, 10_200, 9_800, 10_100, 10_400):
        venue.state.wallet = wallet * M
        monitor.wallet = wallet * M
        await monitor.reconcile()
    pnl = monitor.pnl()
    assert pnl["max_drawdown"] == 700 and monitor.stats.max_drawdown_ppm == 66_667  # 700 / 10,500, rounded up
    assert pnl["max_drawdown_pct"] == Decimal("6.6667")
    assert pnl["sharpe_ratio"] is not None
    await monitor.stop()


def test_the_engine_imports_no_protobuf_and_keeps_its_old_names():
    import subprocess
    import sys

    code = ("import sys, celeris.account.engine as e; "
            "assert not [m for m in sys.modules if m.startswith(('celeris.api', 'google.protobuf', 'grpc'))], "
            "sorted(m for m in sys.modules if 'pb2' in m or m.startswith('grpc')); "
            "from celeris.account.engine import RestVenueReader, AccountConfig, AlertThresholds")
    subprocess.run([sys.executable, "-c", code], check=True)
