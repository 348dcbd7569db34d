"""Adapters to the outside: LLM and embedding providers, GitHub.

They speak the external protocol only; business decisions stay in the apps.
"""
