"""The GitHub workflow's models, taken over from ``integrations`` with their tables and
rows (``integrations`` 0002 renamed the tables to ``bugfix_*``): state only, the database
is not touched here."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("integrations", "0002_move_githublink_to_bugfix"),
        ("support", "0007_github"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="GithubDelivery",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("delivery_id", models.CharField(max_length=100, unique=True)),
                        ("event", models.CharField(max_length=50)),
                        ("action", models.CharField(blank=True, max_length=50)),
                        ("payload", models.JSONField(default=dict)),
                        (
                            "result",
                            models.CharField(
                                choices=[
                                    ("processed", "Processed"),
                                    ("ignored", "Ignored"),
                                    ("failed", "Failed"),
                                ],
                                max_length=10,
                            ),
                        ),
                        ("error", models.TextField(blank=True)),
                        ("received_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "verbose_name_plural": "GitHub deliveries",
                        "ordering": ["-received_at"],
                    },
                ),
                migrations.CreateModel(
                    name="GithubLink",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("repository", models.CharField(help_text="owner/name", max_length=200)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("issue_created", "Issue created"),
                                    ("pr_drafted", "Fix drafted"),
                                    ("pr_merged", "Fix merged"),
                                    ("pr_rejected", "Fix rejected"),
                                    ("failed", "Failed"),
                                ],
                                default="pending",
                                max_length=20,
                            ),
                        ),
                        ("issue_number", models.PositiveIntegerField(blank=True, null=True)),
                        ("issue_url", models.URLField(blank=True)),
                        ("branch_name", models.CharField(blank=True, max_length=200)),
                        ("base_branch", models.CharField(blank=True, max_length=200)),
                        ("pr_number", models.PositiveIntegerField(blank=True, null=True)),
                        ("pr_url", models.URLField(blank=True)),
                        (
                            "suggested_files",
                            models.JSONField(
                                blank=True,
                                default=list,
                                help_text="The AI's fix: [{path, original, content}] (original: the file before).",
                            ),
                        ),
                        ("fix_explanation", models.TextField(blank=True)),
                        ("fix_confidence", models.FloatField(blank=True, null=True)),
                        ("fix_model", models.CharField(blank=True, max_length=100)),
                        (
                            "checks_state",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("pending", "Pending"),
                                    ("passed", "Passed"),
                                    ("failed", "Failed"),
                                ],
                                default="pending",
                                max_length=10,
                            ),
                        ),
                        ("reviewed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "review_decision",
                            models.CharField(
                                blank=True,
                                choices=[("approved", "Approved"), ("rejected", "Rejected")],
                                max_length=10,
                            ),
                        ),
                        ("review_note", models.TextField(blank=True)),
                        ("last_error", models.TextField(blank=True)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "reviewed_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "ticket",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="github_link",
                                to="support.ticket",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-created_at"],
                        "indexes": [
                            models.Index(
                                fields=["repository", "pr_number"], name="github_link_pr_idx"
                            ),
                            models.Index(
                                fields=["repository", "issue_number"], name="github_link_issue_idx"
                            ),
                            models.Index(fields=["status"], name="github_link_status_idx"),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("fix_confidence__isnull", True),
                                    models.Q(
                                        ("fix_confidence__gte", 0), ("fix_confidence__lte", 1)
                                    ),
                                    _connector="OR",
                                ),
                                name="github_fix_confidence_0_1",
                            )
                        ],
                    },
                ),
            ],
        ),
    ]
