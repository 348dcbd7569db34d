"""The move of the GitHub workflow from ``integrations`` to ``bugfix``: the tables (rows
included) are renamed, not re-created, and work queued under the old task names runs
under the new ones."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from bugfix.models import GithubDelivery, GithubLink
from core.models import OutboxItem
from support import services as support_services

pytestmark = pytest.mark.django_db
rename = importlib.import_module("bugfix.migrations.0002_rename_outbox_tasks")


def owed(task, status="pending"):
    return OutboxItem.objects.create(
        task=task, args=[1], status=status, available_at=timezone.now()
    )


def names_on(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass"
            " UNION SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = %s::regclass"
            " UNION SELECT pg_get_serial_sequence(%s, 'id')",
            [table, table, table],
        )
        return {row[0].split(".")[-1] for row in cursor.fetchall()}


def test_the_models_live_in_bugfix_tables():
    assert GithubLink._meta.db_table == "bugfix_githublink"
    assert GithubDelivery._meta.db_table == "bugfix_githubdelivery"
    tables = set(connection.introspection.table_names())
    assert {"bugfix_githublink", "bugfix_githubdelivery"} <= tables
    assert not {"integrations_githublink", "integrations_githubdelivery"} & tables
    # Keys, indexes and sequences carry the new table name too.
    assert not [n for n in names_on("bugfix_githublink") if n.startswith("integrations")]
    assert "bugfix_githublink_pkey" in names_on("bugfix_githublink")


def test_owed_tasks_take_the_new_names():
    pending = owed("integrations.github.tasks.create_issue")
    failed = owed("integrations.github.tasks.draft_pull_request", status="failed")
    done = owed("integrations.github.tasks.create_issue", status="done")
    other = owed("support.tasks.analyze_ticket")

    rename.forwards(django_apps, None)

    tasks = {i.pk: i.task for i in OutboxItem.objects.all()}
    assert tasks[pending.pk] == "bugfix.tasks.create_issue"
    assert tasks[failed.pk] == "bugfix.tasks.draft_pull_request"
    assert tasks[done.pk] == "integrations.github.tasks.create_issue"  # history as it ran
    assert tasks[other.pk] == "support.tasks.analyze_ticket"
    rename.backwards(django_apps, None)
    assert OutboxItem.objects.get(pk=pending.pk).task == "integrations.github.tasks.create_issue"


def test_an_existing_link_survives_the_upgrade(customer, settings):
    """Back to before the move, a link and an owed task written there, then forward."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    before = [("integrations", "0001_github"), ("bugfix", None)]
    # The test's transaction has deferred foreign-key checks pending: run them now, or
    # PostgreSQL refuses to rename the tables.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    ticket = support_services.ticket_open(
        requester=customer, subject="Crash", description="It crashes.", type="bug"
    )
    try:
        executor.migrate(before)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO integrations_githublink (ticket_id, repository, status,"
                " issue_number, issue_url, branch_name, base_branch, pr_url, suggested_files,"
                " fix_explanation, fix_model, checks_state, review_decision, review_note,"
                " last_error, attempts, created_at, updated_at) VALUES (%s, 'acme/flowboard',"
                " 'issue_created', 1347, '', '', '', '', '[]', '', '', 'pending', '', '', '',"
                " 0, now(), now()) RETURNING id",
                [ticket.pk],
            )
            (link_id,) = cursor.fetchone()
        assert "integrations_githublink_pkey" in names_on("integrations_githublink")
        item = owed("integrations.github.tasks.draft_pull_request")

        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    finally:
        ContentType.objects.clear_cache()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    link = GithubLink.objects.get(pk=link_id)
    assert (link.ticket, link.issue_number, link.status) == (ticket, 1347, "issue_created")
    assert ticket.github_link == link
    assert OutboxItem.objects.get(pk=item.pk).task == "bugfix.tasks.draft_pull_request"
    assert "bugfix_githublink_pkey" in names_on("bugfix_githublink")
    # New rows keep numbering after the moved ones (the identity sequence came along).
    other = support_services.ticket_open(requester=customer, subject="B", description="b")
    assert GithubLink.objects.create(ticket=other, repository="acme/flowboard").pk > link_id
