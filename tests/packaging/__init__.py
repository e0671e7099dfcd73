"""Packaging: the RPMs of gofer.spec, the systemd unit and the man pages."""
