"""Every write of knowledge base: one function per state change, one transaction each."""
