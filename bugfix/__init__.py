"""Bug tickets to fixes: a bug ticket becomes a GitHub issue, the AI drafts a fix as a
draft pull request on a branch of its own, a person reviews it (the review gate), and
GitHub's webhooks report checks, merges and closed issues back (``GithubLink``,
``GithubDelivery``).

It listens to support (``core.events``: ``ticket_bug_confirmed``) and adds its door to
support's screens (the "Send to GitHub" admin action and API endpoint); support never
imports it. GitHub itself is reached through the adapter in ``integrations.github``.
"""
