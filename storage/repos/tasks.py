"""Tasks and follow-ups."""
from __future__ import annotations

from storage.models import Task
from storage.repos.base import Repository


class TaskRepository(Repository[Task]):
    model = Task
