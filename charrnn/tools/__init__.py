"""Benchmarks, plots and the inspect report."""
