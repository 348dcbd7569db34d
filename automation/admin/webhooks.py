"""Webhooks in admin (being written)."""
