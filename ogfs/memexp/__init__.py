"""memexp: the lock server memexpd and its client in the ogfs daemon (docs/memexp-protocol.md)."""
