"""Celeris: a Kubernetes-native high-frequency trading system for crypto perpetual futures."""

__version__ = "0.1.0"
