"""Every write of feedback: one function per state change, one transaction each."""
