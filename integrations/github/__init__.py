"""GitHub: issues, branches, draft pull requests, webhooks (PyGithub)."""
