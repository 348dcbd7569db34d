"""custom_fields: see support/admin/__init__.py (being built)."""
