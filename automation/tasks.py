"""Automation's Celery tasks: the time-rule sweep (beat) and webhook deliveries."""
