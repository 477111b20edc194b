"""Node controller fixtures: the real Neutron server of the provisioning tests, for the end-to-end test."""

from tests.support.fixtures_openstack import *  # noqa: F403 (fixtures are found by name)
