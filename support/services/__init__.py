"""Every write of support: one function per state change, named ``<entity>_<verb>``.

- ``tickets``: the ticket's life (open, reply, assign, edit, escalate, hand a chat over,
  resolve, close, reopen, rate, ask the AI again);
- ``training``: the training loop (harvest, review, reuse);
- ``organizations``: organizations and their people (revenue changes are announced);
- ``desk``: the desk's setup (saved replies, teams and members, SLA policies and
  business calendars);
- ``accounts``: customers signing up, API tokens;
- ``tags``: tags on tickets and the curated list;
- ``custom_fields``: custom field definitions and their values on tickets;
- ``merge``: merging duplicates into a ticket, splitting messages off into a new one;
- ``copilot``: the record of each call of the agents' copilot;
- ``traces``: the AI's decision traces (one per analysis) and their deletion when old;
- ``actions``: HTTP actions the AI may call (definitions, calls) and the runs of those
  that change data (the customer confirms, an agent approves, a task runs it).

Each module lists its services in ``__all__``; all are re-exported here, so callers
write ``from support import services`` and ``services.ticket_open(...)``.
"""

from support.services.accounts import *  # noqa: F403
from support.services.actions import *  # noqa: F403
from support.services.copilot import *  # noqa: F403
from support.services.custom_fields import *  # noqa: F403
from support.services.delivery import *  # noqa: F403
from support.services.desk import *  # noqa: F403
from support.services.email import *  # noqa: F403
from support.services.mailboxes import *  # noqa: F403
from support.services.merge import *  # noqa: F403
from support.services.organizations import *  # noqa: F403
from support.services.tags import *  # noqa: F403
from support.services.tickets import *  # noqa: F403
from support.services.traces import *  # noqa: F403
from support.services.training import *  # noqa: F403
