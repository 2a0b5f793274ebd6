"""The dashboard over gRPC shows fees per asset and funding with the keys the in-process source uses (the
account's export): a BNB fee in BNB, its USDT value blank without a BNBUSDT mark, never added to USDT."""

from __future__ import annotations

from celeris.account import servicer
from celeris.api.v1 import account_pb2, common_pb2
from celeris.dashboard.remote import GrpcSource
from celeris.dashboard.state import DashboardState
from tests.account.test_funding_and_fee_asset import account_update, make, trade


async def test_remote_pnl_summary_has_the_per_asset_fees_and_funding():
    m = await make()
    m.on_user_event(trade("10.00000000", "0.00012345", "BNB"))
    m.on_user_event(trade("0", "1.20000000", "USDT"))
    m.on_user_event(account_update("FUNDING_FEE", [("USDT", "9994.00000000")], [("BTCUSDT", "0.100")]))
    state = DashboardState()
    source = GrpcSource(None, state, lambda: 1)
    update = account_pb2.AccountUpdate(header=common_pb2.StreamHeader(sequence=1, snapshot=True),
                                       state=servicer.AccountServicer(m).state())
    source._on_account(update)
    summary = state.snapshot()["pnl.summary"]
    assert summary["fees_bnb"] == "0.00012345" and summary["fees_bnb_usdt"] == ""
    assert summary["fees_usdt"] == "1.20" and summary["fees"] == "1.20"
    assert summary["funding"] == "-6.00" and summary["trading_pnl"] == "10.00"
    local = {k for k in m.pnl() if k.startswith("fees")}
    assert local <= set(summary)  # the same names as the in-process dashboard's
    m.on_mark("BNBUSDT", "500.00000000")
    source._on_account(account_pb2.AccountUpdate(header=common_pb2.StreamHeader(sequence=2),
                                                 state=servicer.AccountServicer(m).state({"pnl"})))
    assert state.snapshot()["pnl.summary"]["fees_bnb_usdt"] == "0.06"
