"""The analytics rollup benchmark, in parts (``bench/analytics_rollup.py`` runs them):

- :mod:`bench.rollup.database`: the bench servers of ``.data/bench`` and the benchmark's own
  database, set up before Django is (needs no settings);
- :mod:`bench.rollup.generate`: the reference data (customers, agents, teams, articles)
  and the bulk writer, which writes the stories of :mod:`analytics.history` with COPY,
  row for row what the services write;
- :mod:`bench.rollup.plans`: statements captured while a rollup runs, their plans,
  sequential scans of big tables and index hints;
- :mod:`bench.rollup.measure`: the measurements (one day's rollup, backfills, the
  overview dashboard);
- :mod:`bench.rollup.report`: facts about the data, the database and the machine, and
  the text report.
"""

#: Tables the generator fills (their secondary indexes and foreign keys are dropped
#: during the load and rebuilt after it); the plan analysis watches their scans.
BIG_TABLES = (
    "support_ticket",
    "support_message",
    "support_ticketevent",
    "support_escalation",
    "support_trainingexample",
    "knowledge_searchlog",
    "knowledge_knowledgebasemetric",
)
#: Days of history before ``--end``.
DAYS = 365
#: The seed of the benchmark's history (``analytics.history.Desk.seed``).
SEED = 20251201
