"""Controller fixtures: the real Neutron server of the provisioning tests, for the end-to-end tests."""

from tests.support.fixtures_openstack import *  # noqa: F403 (fixtures are found by name)
