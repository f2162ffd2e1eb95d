"""Team channels that receive alerts."""
from __future__ import annotations

from storage.models import TeamChannel
from storage.repos.base import Repository


class TeamChannelRepository(Repository[TeamChannel]):
    model = TeamChannel
