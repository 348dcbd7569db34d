"""Admin screens of knowledge base; every action calls a service."""
