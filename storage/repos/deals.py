"""Deals and their stage history."""
from __future__ import annotations

from storage.models import Deal
from storage.repos.base import Repository


class DealRepository(Repository[Deal]):
    model = Deal
