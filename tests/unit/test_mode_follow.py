"""As services, the risk manager and the account monitor follow the mode execution trades in: a mode
switched on execution alone must not leave them judging the other account."""

import asyncio

from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.assembly.paper_account import follow_execution_mode
from celeris.runtime import control, grpc_server


async def test_the_mode_follows_execution():
    ctl = control.ComponentControl("execution", TestClock(10**18), mode=Mode.SIMULATION)
    bound = grpc_server.create_server([control.registrar(ctl)])
    await bound.server.start()
    current, seen = [Mode.SIMULATION], []
    task = asyncio.ensure_future(follow_execution_mode(bound.target, current, seen.append, interval_s=0.05))
    try:
        await ctl.set_mode(Mode.LIVE, "test", "execution alone")
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.05)
        assert current == [Mode.LIVE] and seen == [Mode.LIVE]
    finally:
        task.cancel()
        await bound.server.stop(None)
