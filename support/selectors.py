"""Non-trivial reads of support: functions returning QuerySets."""
