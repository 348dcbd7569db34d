from django.apps import AppConfig


class BugfixConfig(AppConfig):
    name = "bugfix"
    verbose_name = "Bug fixes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from bugfix import subscribers
        from core import events

        # Triage confirmed a bug: it goes to GitHub, in the pipeline's transaction.
        events.subscribe("ticket_bug_confirmed", subscribers.ticket_bug_confirmed)
