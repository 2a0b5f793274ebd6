"""celeris.strategy: the strategy engine (plugins, aggregation, risk filter, order generation)."""
