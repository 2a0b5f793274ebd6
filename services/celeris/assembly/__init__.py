"""celeris.assembly: each component built once, by one builder, from one configuration model.

`plan` turns the TradingSystem spec into every component's typed settings (`settings`); one builder per
component (`marketdata`, `execution`, `strategy`, `risk`, `account`, `dashboard`) builds it from its
settings, the process's shared parts (`wiring`) and the ports to the other components (`ports`), which
come in an in-process shape and a gRPC shape. `inprocess` runs them all in one process (`celeris up`),
`service` one per process (`celeris up --topology services`, the Kubernetes pods).
"""
