"""Demo data for a fresh install: idempotent, so loading it twice changes nothing.

Later parts of the product add their own demo rows here (organizations, tickets,
articles, feature requests); each loader looks rows up by a natural key first.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction


@dataclass(frozen=True)
class DemoLogin:
    role: str
    username: str
    password: str
    where: str


DEMO_LOGINS = (
    DemoLogin("customer", "customer", "customer-demo", "/"),
    DemoLogin("agent", "agent", "agent-demo", "/admin/"),
    DemoLogin("manager", "manager", "manager-demo", "/admin/"),
    DemoLogin("admin", "admin", "admin-demo", "/admin/"),
)

_PROFILES = {
    "customer": {"first_name": "Casey", "last_name": "Customer", "email": "casey@example.com"},
    "agent": {"first_name": "Alex", "last_name": "Agent", "email": "alex@helpdesk.example"},
    "manager": {"first_name": "Morgan", "last_name": "Manager", "email": "morgan@helpdesk.example"},
    "admin": {"first_name": "Ada", "last_name": "Admin", "email": "ada@helpdesk.example"},
}


@transaction.atomic
def load_demo_users() -> list[DemoLogin]:
    from django.contrib.auth.models import Group

    User = get_user_model()
    agents, _ = Group.objects.get_or_create(name=settings.AGENTS_GROUP)
    managers, _ = Group.objects.get_or_create(name=settings.MANAGERS_GROUP)
    for login in DEMO_LOGINS:
        user, created = User.objects.get_or_create(
            username=login.username, defaults=_PROFILES[login.role]
        )
        if created:
            user.set_password(login.password)
        user.is_staff = login.role != "customer"
        user.is_superuser = login.role == "admin"
        user.save()
        if login.role == "agent":
            user.groups.add(agents)
        if login.role == "manager":
            user.groups.add(agents, managers)
    return list(DEMO_LOGINS)


def load_demo_data() -> list[DemoLogin]:
    return load_demo_users()
