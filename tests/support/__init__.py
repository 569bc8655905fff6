"""Helpers shared by integration tests, e2e tests and benchmarks."""
