"""celeris.domain: the pure trading core (standard library only, synchronous, no I/O).

Prices are integer ticks, quantities integer steps, money integer 1e-8 units; time comes from a Clock.
"""
