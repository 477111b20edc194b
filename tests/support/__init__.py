"""What the tests share that is not a test: harnesses, emulator fixtures, worker processes, factories.

``factories`` builds test data through the services (the only way rows come to be in
production); the other modules start and drive the emulators (moto, Neutron), the fault
proxy and the worker processes some tests run. pytest collects nothing here (``test_*.py``
only); ``tests/providers/conftest.py`` makes the emulator fixtures visible to those tests.
"""
