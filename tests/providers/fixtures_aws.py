"""Fixtures for the AWS adapter tests (moto in server mode on loopback)."""
