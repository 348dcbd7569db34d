"""Non-trivial reads of feedback: functions returning QuerySets."""
