"""Typed domain errors. `str(error)` is a message fit to show a user as it is."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the input it is about, so forms can show it inline


class NotFound(DomainError):
    pass


class NotAllowed(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class Duplicate(DomainError):
    """Raised when a new record looks like existing ones; `candidates` lists them."""

    def __init__(self, message: str, candidates: list[Any]) -> None:
        super().__init__(message)
        self.candidates = candidates


class PaymentExceedsBalance(DomainError):
    pass


class Conflict(DomainError):
    """The record changed state in a way that makes the action meaningless (already won ...)."""


class UnknownUser(DomainError):
    """The chat identity is not a ChatCRM user."""
