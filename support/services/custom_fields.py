"""custom_fields (being built)."""

__all__: list[str] = []
