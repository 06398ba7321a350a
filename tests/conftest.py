"""Shared fixtures. Every test runs without ../shared and writes only under tmp_path."""

from __future__ import annotations

import pytest

from tests.helpers import match_events


@pytest.fixture(autouse=True)
def _private_journal(tmp_path_factory, monkeypatch):
    """Never let a test write to the real per-user journal."""
    monkeypatch.setenv("TOETWITCH_JOURNAL", str(tmp_path_factory.mktemp("journal") / "journal.sqlite"))


@pytest.fixture
def matcher():
    return match_events
