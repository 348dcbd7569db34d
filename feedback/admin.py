"""Admin screens of feedback; every action calls a service."""
