"""gRPC shell of the strategy engine: list/enable/disable/reload strategies, their state, the signal stream."""

from __future__ import annotations

import asyncio
import json

import grpc

from celeris.api.v1 import common_pb2, strategy_pb2, strategy_pb2_grpc
from celeris.domain.signals import Urgency
from celeris.domain.values import Side
from celeris.strategy.engine import Runner, SignalEvent, StrategyEngine
from celeris.domain.topics import signal_topic
from celeris.transport.bus import InProcessBus

URGENCY = {Urgency.PASSIVE: strategy_pb2.URGENCY_PASSIVE, Urgency.NORMAL: strategy_pb2.URGENCY_NORMAL,
           Urgency.AGGRESSIVE: strategy_pb2.URGENCY_AGGRESSIVE}


def info_pb(runner: Runner, request_id: str = "") -> strategy_pb2.StrategyInfo:
    return strategy_pb2.StrategyInfo(request_id=request_id, name=runner.config.name, type=runner.config.type,
                                     symbols=[runner.config.symbol], enabled=runner.enabled, signals=runner.signals,
                                     errors=runner.errors, disabled_reason=runner.disabled_reason)


class StrategyServicer(strategy_pb2_grpc.StrategyEngineServicer):
    def __init__(self, engine: StrategyEngine, bus: InProcessBus) -> None:
        self._engine = engine
        self._bus = bus

    async def _runner(self, name: str, context: grpc.aio.ServicerContext) -> Runner:
        runner = self._engine.runners.get(name)
        if runner is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no strategy named {name!r}")
        return runner

    async def ListStrategies(self, request, context):  # type: ignore[no-untyped-def]
        return strategy_pb2.ListStrategiesResponse(
            request_id=request.request_id, strategies=[info_pb(r) for r in self._engine.runners.values()])

    async def EnableStrategy(self, request, context):  # type: ignore[no-untyped-def]
        await self._runner(request.name, context)
        return info_pb(self._engine.enable(request.name), request.request_id)

    async def DisableStrategy(self, request, context):  # type: ignore[no-untyped-def]
        await self._runner(request.name, context)
        return info_pb(self._engine.disable(request.name), request.request_id)

    async def ReloadStrategy(self, request, context):  # type: ignore[no-untyped-def]
        await self._runner(request.name, context)
        try:
            runner = self._engine.reload(request.name)
        except Exception as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"reload failed: {exc!r}")
        return info_pb(runner, request.request_id)

    async def GetStrategyState(self, request, context):  # type: ignore[no-untyped-def]
        runner = await self._runner(request.name, context)
        return strategy_pb2.StrategyState(request_id=request.request_id, name=request.name,
                                          state_json=json.dumps(dict(runner.strategy.get_state()), default=str))

    async def StreamSignals(self, request, context):  # type: ignore[no-untyped-def]
        symbols = list(request.symbols) or list(self._engine.instruments)
        queue: asyncio.Queue[SignalEvent] = asyncio.Queue(maxsize=10_000)

        def on_signal(event: SignalEvent) -> None:
            if queue.full():
                queue.get_nowait()  # the oldest signal is the least useful
            queue.put_nowait(event)

        offs = [self._bus.subscribe(signal_topic(s), on_signal) for s in symbols]
        sequence = 1
        clock = self._engine.clock
        try:
            yield strategy_pb2.SignalUpdate(header=common_pb2.StreamHeader(sequence=sequence, snapshot=True,
                                                                           ts_publish_ns=clock.now_ns()))
            while True:
                event = await queue.get()
                sequence += 1
                signal = event.signal
                ins = self._engine.instruments[signal.symbol]
                pb = strategy_pb2.Signal(
                    symbol=signal.symbol, side=common_pb2.SIDE_BUY if signal.side is Side.BUY else common_pb2.SIDE_SELL,
                    strength=signal.strength, urgency=URGENCY[signal.urgency], reason=signal.reason,
                    strategy=signal.strategy, ts_event_ns=signal.ts_event_ns, contributors=list(event.contributors))
                if signal.price_hint_ticks is not None:
                    pb.price_hint.CopyFrom(common_pb2.Decimal(mantissa=ins.price_grid.units(signal.price_hint_ticks),
                                                              scale=ins.price_grid.scale))
                yield strategy_pb2.SignalUpdate(
                    header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=signal.ts_event_ns,
                                                   ts_publish_ns=clock.now_ns()),
                    signal=pb, approved=event.approved, rejection_reason=event.rejection_reason)
        finally:
            for off in offs:
                off()


def registrar(engine: StrategyEngine, bus: InProcessBus):  # type: ignore[no-untyped-def]
    def register(server: grpc.aio.Server) -> None:
        strategy_pb2_grpc.add_StrategyEngineServicer_to_server(StrategyServicer(engine, bus), server)
    return register
