"""The overview's openings by channel, filled in for the days already rolled up (one
grouped pass over the tickets, in the analytics time zone)."""

from django.conf import settings
from django.db import migrations, models

CHANNELS = ("web", "email", "chat", "api")


def fill_past_days(apps, schema_editor):
    counts = ", ".join(f"count(*) FILTER (WHERE channel = '{c}') AS {c}" for c in CHANNELS)
    assign = ", ".join(f"opened_{c} = counted.{c}" for c in CHANNELS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE analytics_dailyoverview AS o SET {assign} FROM ("  # noqa: S608
            f"SELECT (created_at AT TIME ZONE %s)::date AS day, {counts}"
            " FROM support_ticket GROUP BY 1) AS counted WHERE counted.day = o.day",
            [settings.ANALYTICS_TIME_ZONE],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_daily_rollups"),
        ("support", "0013_mailbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="dailyoverview",
            name="opened_api",
            field=models.PositiveIntegerField(default=0, verbose_name="opened through the API"),
        ),
        migrations.AddField(
            model_name="dailyoverview",
            name="opened_chat",
            field=models.PositiveIntegerField(default=0, verbose_name="opened in the chat"),
        ),
        migrations.AddField(
            model_name="dailyoverview",
            name="opened_email",
            field=models.PositiveIntegerField(default=0, verbose_name="opened by email"),
        ),
        migrations.AddField(
            model_name="dailyoverview",
            name="opened_web",
            field=models.PositiveIntegerField(default=0, verbose_name="opened on the portal"),
        ),
        migrations.RunPython(fill_past_days, migrations.RunPython.noop),
    ]
