"""Every write of integrations: one function per state change, one transaction each."""
