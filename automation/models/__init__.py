"""Automation's tables: rules and their firings (``rules``), outbound webhook
subscriptions and their delivery log (``webhooks``)."""

from automation.models.rules import Rule, RuleFiring
from automation.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = ["Rule", "RuleFiring", "WebhookDelivery", "WebhookEndpoint"]
