"""Shared fixtures. Every test runs without ../shared and writes only under tmp_path."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.helpers import match_events

# Deterministic property tests: the same examples on every run and machine (no example
# database, no deadline on a loaded 2-core CI machine); a test's own @settings adds to this.
settings.register_profile("toetwitch", derandomize=True, database=None, deadline=None)
settings.load_profile("toetwitch")


@pytest.fixture(autouse=True)
def _private_journal(tmp_path_factory, monkeypatch):
    """Never let a test write to the real per-user journal or data folder (trained models)."""
    monkeypatch.setenv("TOETWITCH_JOURNAL", str(tmp_path_factory.mktemp("journal") / "journal.sqlite"))
    monkeypatch.setenv("TOETWITCH_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def matcher():
    return match_events
