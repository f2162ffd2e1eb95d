"""Interactions: a contact's history."""
from __future__ import annotations

from storage.models import Interaction
from storage.repos.base import Repository


class InteractionRepository(Repository[Interaction]):
    model = Interaction
