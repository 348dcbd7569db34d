"""Accounts that existed before sign-up needed a verified email keep working: each user
with an email gets allauth's EmailAddress row, verified and primary. When several users
share an address only the oldest gets it verified (allauth allows one verified owner)."""

from django.conf import settings
from django.db import migrations


def verify_existing(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    EmailAddress = apps.get_model("account", "EmailAddress")
    taken = {email.lower() for email in EmailAddress.objects.values_list("email", flat=True)}
    has_address = set(EmailAddress.objects.values_list("user_id", flat=True))
    rows = []
    for user_id, email in User.objects.exclude(email="").order_by("pk").values_list("pk", "email"):
        email = email.strip().lower()
        if not email or user_id in has_address:
            continue
        verified = email not in taken
        taken.add(email)
        rows.append(EmailAddress(user_id=user_id, email=email, verified=verified, primary=True))
    EmailAddress.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0010_ticketevent_notification_failed"),
        ("account", "0009_emailaddress_unique_primary_email"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(verify_existing, migrations.RunPython.noop)]
