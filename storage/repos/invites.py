"""One-time invite and link codes."""
from __future__ import annotations

from storage.models import Invite
from storage.repos.base import Repository


class InviteRepository(Repository[Invite]):
    model = Invite
