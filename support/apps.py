from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Delivery events of our mail (anymail's tracking webhooks) → the messages.
        from support.email import inbound_webhooks, tracking

        tracking.connect()
        inbound_webhooks.connect()  # mail received by a provider → email_receive
