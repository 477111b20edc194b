"""Fixtures for the OpenStack adapter tests (real Neutron API server on loopback)."""
