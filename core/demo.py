"""Demo data for a fresh install, loaded app by app.

``load_demo_data`` calls each project app's own loader, ``<app>.demo.load_demo()``, in the
order of ``INSTALLED_APPS`` (support's users and tickets first, then the help center, the
roadmap, the dashboards' history). Each loader writes through its app's services, is
idempotent (loading twice changes nothing) and may return the :class:`DemoLogin` rows it
created, which the command prints. Core imports no app: it finds the loaders by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings


@dataclass(frozen=True)
class DemoLogin:
    role: str
    username: str
    password: str
    where: str


def demo_loaders() -> list:
    """``load_demo`` of every project app that has a ``demo`` module, in app order."""
    base = Path(settings.BASE_DIR).resolve()
    loaders = []
    for config in apps.get_app_configs():
        if base not in Path(config.path).resolve().parents:
            continue  # Django's and third parties' apps
        name = f"{config.name}.demo"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:
                continue
            raise
        if hasattr(module, "load_demo"):
            loaders.append(module.load_demo)
    return loaders


def load_demo_data() -> list[DemoLogin]:
    logins: list[DemoLogin] = []
    for load in demo_loaders():
        logins.extend(load() or [])
    return logins
