"""What every app shares and nothing app-specific: the transactional outbox (follow-up work
recorded with the change that caused it), roles. ``core`` imports no other app."""
