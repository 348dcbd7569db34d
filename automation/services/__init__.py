"""Automation's write path: one function per change (``rules``, ``webhooks``)."""
