"""The audit log refuses updates in the database itself; default SLA policies and the
general queue exist from the start."""

from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION support_ticketevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ticket events are append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER support_ticketevent_no_update
    BEFORE UPDATE ON support_ticketevent
    FOR EACH ROW EXECUTE FUNCTION support_ticketevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS support_ticketevent_no_update ON support_ticketevent;
DROP FUNCTION IF EXISTS support_ticketevent_append_only();
"""

POLICIES = [
    # name, low, normal, high, urgent (hours to resolve), default?
    ("Standard", 72, 24, 8, 4, True),
    ("Premium", 24, 8, 4, 1, False),
]


def seed(apps, schema_editor):
    SlaPolicy = apps.get_model("support", "SlaPolicy")
    Team = apps.get_model("support", "Team")
    for name, low, normal, high, urgent, is_default in POLICIES:
        SlaPolicy.objects.get_or_create(
            name=name,
            defaults={
                "low_hours": low,
                "normal_hours": normal,
                "high_hours": high,
                "urgent_hours": urgent,
                "is_default": is_default,
            },
        )
    Team.objects.get_or_create(name="General", defaults={"is_default": True})


class Migration(migrations.Migration):
    dependencies = [("support", "0002_tickets")]

    operations = [
        migrations.RunSQL(APPEND_ONLY, DROP),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
