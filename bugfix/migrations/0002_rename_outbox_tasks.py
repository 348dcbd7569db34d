"""The GitHub tasks are now ``bugfix.tasks.*`` (they were ``integrations.github.tasks.*``):
outbox rows that still owe work under the old names (pending, sent, running, or failed and
retriable from admin) take the new ones, so what was queued before the upgrade runs after
it. Done rows keep the name they ran under. The content types of the moved models follow
them too, so permissions and admin history stay attached."""

from django.db import migrations
from django.db.models import Value
from django.db.models.functions import Concat, Substr

OLD_PREFIX = "integrations.github.tasks."
NEW_PREFIX = "bugfix.tasks."
MODELS = ("githublink", "githubdelivery")


def _rename_tasks(apps, old: str, new: str) -> int:
    OutboxItem = apps.get_model("core", "OutboxItem")
    return (
        OutboxItem.objects.filter(task__startswith=old)
        .exclude(status="done")
        .update(task=Concat(Value(new), Substr("task", len(old) + 1)))
    )


def _move_content_types(apps, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor):
    _rename_tasks(apps, OLD_PREFIX, NEW_PREFIX)
    _move_content_types(apps, "integrations", "bugfix")


def backwards(apps, schema_editor):
    _rename_tasks(apps, NEW_PREFIX, OLD_PREFIX)
    _move_content_types(apps, "bugfix", "integrations")


class Migration(migrations.Migration):
    dependencies = [
        ("bugfix", "0001_initial"),
        ("core", "0001_outbox"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
