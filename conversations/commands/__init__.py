"""Chat commands and button actions, one module per area; each registers itself on import
(`conversations.registry.command` / `action`). `load_all()` imports every module here."""
from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
