"""Non-trivial reads of integrations: functions returning QuerySets."""
