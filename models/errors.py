"""The models layer's error root."""

from __future__ import annotations

from toetwitch import ToetwitchError


class ModelError(ToetwitchError):
    """The root of the models layer's errors (answers, knowledge base, trained model)."""
