"""Every write of support: one function per state change, one transaction each."""
