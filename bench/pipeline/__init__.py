"""Whole-pipeline benchmark (`python -m bench.pipeline`): where the bottleneck is, latency, and what scale costs."""
