"""Venue adapters: code that speaks one exchange's protocol and hands the core domain values."""
