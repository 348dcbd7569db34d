"""Non-trivial reads of analytics: functions returning QuerySets."""
