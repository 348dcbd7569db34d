"""Admin screens of support; every action calls a service."""
