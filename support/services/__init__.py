"""Every write of support: one function per state change.

``tickets`` holds the ticket lifecycle (open, reply, assign, escalate, resolve, rate …);
``training`` the training loop (harvest, review, reuse). Both are re-exported here, so
callers write ``from support import services`` and ``services.ticket_open(...)``.
"""

from support.services.tickets import *  # noqa: F403
from support.services.training import *  # noqa: F403
