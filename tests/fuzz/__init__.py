"""Fuzzers that run against a live server (issue #5): ``python -m tests.fuzz.live --help``."""
