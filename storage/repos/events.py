"""Inbound platform events already handled (dedupe)."""
from __future__ import annotations

from storage.models import ProcessedEvent
from storage.repos.base import Repository


class ProcessedEventRepository(Repository[ProcessedEvent]):
    model = ProcessedEvent
