from django.apps import AppConfig


def reweigh_organization_votes(*, organization_id: int) -> None:
    """An organization's revenue changed (announced by support's ``organization_update``
    inside its transaction): reweigh its votes after commit, through the outbox."""
    from core.outbox import schedule_after_commit

    schedule_after_commit("feedback.tasks.reweigh_organization_votes", organization_id)


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core import events

        events.subscribe("organization_revenue_changed", reweigh_organization_votes)
