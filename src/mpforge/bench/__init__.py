"""Benchmarks that print figures: build and test times, gc.threshold measurements."""
