"""Periodic tasks that run once per period however many beat schedulers run.

Celery beat wants exactly one scheduler; a portal with several worker replicas (each
started with ``--beat``, or a beat Deployment rolled over while the old pod still
runs) would enqueue every periodic task once per scheduler. :class:`OncePerPeriodScheduler`
claims each due entry in the portal's own database first — one conditional
``UPDATE`` on :class:`PeriodicRun` whose time is the database's clock — and only the
scheduler whose claim succeeds sends the task. No new coordination system: the
database every replica already shares decides.
"""
