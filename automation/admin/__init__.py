"""Automation in Django admin: rules (``rules``), outbound webhooks (``webhooks``)."""

from automation.admin import rules, webhooks  # noqa: F401 (registers the model admins)
