from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from automation import subscribers
        from core import events

        # Support announces every change to a ticket at the end of its service, in its
        # transaction: rules run and webhook deliveries are queued in that transaction.
        events.subscribe("ticket_activity", subscribers.ticket_activity)
        events.subscribe("feature_request_status_changed", subscribers.feature_request_status)
