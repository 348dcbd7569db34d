"""The walls between apps, checked with the suite.

1. Import contracts (``[tool.importlinter]`` in pyproject.toml, run by ``lint-imports``):
   which app may import which, lazy imports inside functions included.
2. Doors do not write: a view, admin module, consumer, task or webhook never assigns a
   ``status`` nor calls ``.save()``/``.delete()`` on a model, nor writes another app's
   model through its manager; they call the owning app's service (ARCHITECTURE, "The
   write path"). A plain AST scan, with its own tests so it cannot pass by seeing nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "core",
    "support",
    "knowledge",
    "feedback",
    "analytics",
    "bugfix",
    "automation",
    "integrations",
)
DOOR_FILES = {"views.py", "admin.py", "consumers.py", "tasks.py", "webhooks.py"}
# The email channel's doors: the SMTP receiver, IMAP polling, providers' webhooks.
DOOR_FILES |= {"smtp.py", "imap_poll.py", "inbound_webhooks.py", "tracking.py"}
DOOR_FOLDERS = {"admin", "views", "api", "commands"}  # packages of doors (api: views only)
WRITES = {"create", "update", "delete", "bulk_create", "bulk_update", "get_or_create"}
WRITES |= {"update_or_create"}


def door_modules() -> list[Path]:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT / app).parts
            if "migrations" in parts or "services" in parts:
                continue
            if path.name in DOOR_FILES or (
                len(parts) > 1
                and parts[-2] in DOOR_FOLDERS
                and path.name not in {"serializers.py", "urls.py", "filters.py", "__init__.py"}
            ):
                found.append(path)
    return sorted(found)


def _model_names_by_app() -> dict[str, set[str]]:
    from django.apps import apps

    names: dict[str, set[str]] = {}
    for config in apps.get_app_configs():
        if config.name in APPS:
            names[config.name] = {model.__name__ for model in config.get_models()}
    return names


def _receiver_name(node: ast.expr) -> str:
    """``ticket.save`` → ``ticket``; ``self.link.save`` → ``link``; ``super().save`` → ``super``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _receiver_name(node.func)
    return ""


def door_writes(source: str, *, app: str, models: dict[str, set[str]]) -> list[str]:
    """The writes a door module makes itself, as ``line: what`` strings."""
    tree = ast.parse(source)
    other_models: dict[str, str] = {}  # local name → owning app, for other apps' models
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            owner = node.module.split(".")[0]
            if owner != app and owner in models and node.module.endswith(".models"):
                for alias in node.names:
                    if alias.name in models[owner]:
                        other_models[alias.asname or alias.name] = owner
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(element, ast.Attribute) and element.attr == "status":
                    found.append(f"{node.lineno}: assigns .status")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, _receiver_name(node.func.value)
        exempt = receiver in {"super", "session", "cache"} or "form" in receiver
        if method in {"save", "delete"} and not exempt:
            found.append(f"{node.lineno}: calls {receiver}.{method}()")
        if method in WRITES:
            chain = node.func.value
            while isinstance(chain, ast.Call | ast.Attribute):
                chain = chain.func if isinstance(chain, ast.Call) else chain.value
            if isinstance(chain, ast.Name) and chain.id in other_models:
                found.append(
                    f"{node.lineno}: writes {other_models[chain.id]}'s {chain.id} via .{method}()"
                )
    return found


# ---- the scanner itself -------------------------------------------------------------

MODELS = {"support": {"Ticket", "Message"}, "feedback": {"Vote"}}


def test_the_scan_finds_a_status_assignment_and_a_save():
    source = (
        "from support.models import Ticket\n"
        "def resolve(request, pk):\n"
        "    ticket = Ticket.objects.get(pk=pk)\n"
        "    ticket.status = 'resolved'\n"
        "    ticket.save()\n"
    )
    assert door_writes(source, app="feedback", models=MODELS) == [
        "4: assigns .status",
        "5: calls ticket.save()",
    ]


def test_the_scan_finds_writes_to_another_apps_model_through_its_manager():
    source = (
        "from support.models import Message, Ticket\n"
        "def go():\n"
        "    Ticket.objects.filter(pk=1).update(priority='urgent')\n"
        "    Message.objects.create(body='x')\n"
        "    Ticket.objects.filter(pk=1).count()\n"
    )
    assert door_writes(source, app="feedback", models=MODELS) == [
        "3: writes support's Ticket via .update()",
        "4: writes support's Message via .create()",
    ]


def test_the_scan_lets_services_forms_and_super_be():
    source = (
        "from support import services\n"
        "class A:\n"
        "    def save_model(self, request, obj, form, change):\n"
        "        services.ticket_resolve(ticket=obj, actor=request.user)\n"
        "        form.save_m2m()\n"
        "        super().save_model(request, obj, form, change)\n"
        "        request.session.delete('x')\n"
    )
    assert door_writes(source, app="support", models=MODELS) == []


# ---- the code ----------------------------------------------------------------------


def test_doors_are_found():
    names = {str(path.relative_to(ROOT)) for path in door_modules()}
    assert {"support/consumers.py", "support/tasks.py", "knowledge/views.py"} <= names
    assert {"support/email/smtp.py", "support/email/inbound_webhooks.py"} <= names
    assert any(name.startswith("support/admin") for name in names)
    assert any(name.startswith("support/api/") and "views" in name for name in names)


def test_no_door_writes_a_model_itself():
    models = _model_names_by_app()
    problems = []
    for path in door_modules():
        app = path.relative_to(ROOT).parts[0]
        for problem in door_writes(path.read_text(), app=app, models=models):
            problems.append(f"{path.relative_to(ROOT)}:{problem}")
    assert problems == [], "Doors must call a service instead:\n" + "\n".join(problems)


@pytest.mark.timeout(120)
def test_import_contracts_hold():
    """``lint-imports`` (import-linter) over the contracts in pyproject.toml."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " 0 broken." in result.stdout
