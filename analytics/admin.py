"""Admin screens of analytics; every action calls a service."""
