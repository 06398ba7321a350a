"""Shared fixtures. Every test runs without ../shared and writes only under tmp_path."""

from __future__ import annotations

import pytest

from tests.helpers import match_events


@pytest.fixture(autouse=True)
def _private_journal(tmp_path_factory, monkeypatch):
    """Never let a test write to the real per-user journal or data folder (trained models)."""
    monkeypatch.setenv("TOETWITCH_JOURNAL", str(tmp_path_factory.mktemp("journal") / "journal.sqlite"))
    monkeypatch.setenv("TOETWITCH_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def matcher():
    return match_events
