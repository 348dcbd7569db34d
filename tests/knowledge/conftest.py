"""Knowledge fixtures (categories, kb, local_provider) live in tests/conftest.py."""
