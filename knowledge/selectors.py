"""Non-trivial reads of knowledge base: functions returning QuerySets."""
