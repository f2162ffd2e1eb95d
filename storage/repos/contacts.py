"""Contacts: search, duplicate candidates, recent lists."""
from __future__ import annotations

from storage.models import Contact
from storage.repos.base import Repository


class ContactRepository(Repository[Contact]):
    model = Contact
