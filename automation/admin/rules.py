"""Rules in admin (being written)."""
