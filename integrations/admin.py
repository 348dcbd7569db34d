"""Admin screens of integrations; every action calls a service."""
