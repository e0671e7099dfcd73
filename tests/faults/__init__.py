"""Fault and security suites: broker restarts, SIGKILL, hostile input, TLS, signing, permissions."""
