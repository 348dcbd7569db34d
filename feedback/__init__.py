"""Feature requests, one vote per user weighted by revenue, and the public roadmap."""
