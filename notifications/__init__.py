"""Outbound events: subscriptions that receive the portal's domain events as signed CloudEvents.

An integration: it subscribes to the domain events through the outbox and delivers them by
Celery. Nothing in the domain imports this package.
"""
