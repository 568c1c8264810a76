"""Test doubles that are real servers (never mock objects), shared by tests and benchmarks."""
