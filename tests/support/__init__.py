"""What the tests share: waits on conditions (never on durations), real servers on loopback ports
(Redis, PostgreSQL, component processes) and the execution harness on the simulator."""
