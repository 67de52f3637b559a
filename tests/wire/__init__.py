"""Wire-level fakes: loopback HTTP servers speaking the real provider protocols."""
