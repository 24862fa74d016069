"""Developer tools run from the Makefile and CI (not part of the service)."""
