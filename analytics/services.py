"""Every write of analytics: one function per state change, one transaction each."""
