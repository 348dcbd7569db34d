"""Adapters to the outside, and nothing else: LLM providers (``integrations.llm``:
Anthropic, OpenAI, the offline local one), embedding providers
(``integrations.embeddings``) and a GitHub client (``integrations.github``, PyGithub).

They speak the external protocol only. They import no app of the project (not even
``core``): whatever a business decision needs (thresholds, retrieval strengths) comes in
as arguments from the app that makes it. The GitHub bug-to-fix workflow lives in
``bugfix``; this app keeps only the migration history of the tables that moved there.
"""
