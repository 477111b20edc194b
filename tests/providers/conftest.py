"""Provider test fixtures: each cloud's emulator fixtures live in their own module."""

from tests.support.fixtures_aws import *  # noqa: F403 (fixtures are found by name)
from tests.support.fixtures_openstack import *  # noqa: F403 (fixtures are found by name)
