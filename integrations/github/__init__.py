"""GitHub client adapter: PyGithub configured from settings, and GitHub's errors sorted
into what to do next (``client``). The workflow that uses it lives in ``bugfix``."""
