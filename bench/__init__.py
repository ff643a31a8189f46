"""Measurement harnesses: reliability and security figures, performance benchmarks. Each prints a table."""
