"""PoolRules: one value for a pool's settings, taken by the services and built by every front end."""

from __future__ import annotations

import pytest

from allocations import services
from allocations.choices import FitPolicy, Purpose, Uniqueness
from allocations.errors import IpamError, PrefixLengthNotAllowed
from allocations.pool_rules import NAMES, UPDATABLE, PoolRules

pytestmark = pytest.mark.django_db


def test_rules_value_and_keywords_make_the_same_pool(make_pool) -> None:
    rules = PoolRules(
        purpose=Purpose.SHOOTS, default_prefix_length=56, fit_policy=FitPolicy.BEST_FIT, tags=["a"]
    )
    by_value = make_pool("2001:db8::/32", rules=rules)
    by_keywords = make_pool(
        "2001:db9::/32",
        purpose=Purpose.SHOOTS,
        default_prefix_length=56,
        fit_policy=FitPolicy.BEST_FIT,
        tags=["a"],
    )
    assert PoolRules.of(by_value) == PoolRules.of(by_keywords) == rules
    assert by_value.tags == ["a"]


def test_a_keyword_overrides_the_rules_value_and_an_unknown_one_is_refused(make_pool) -> None:
    pool = make_pool(rules=PoolRules(default_prefix_length=48), default_prefix_length=56)
    assert pool.default_prefix_length == 56
    with pytest.raises(TypeError):
        make_pool(default_length=56)


def test_uniqueness_is_the_only_rule_fixed_at_creation(make_pool, actor) -> None:
    assert set(NAMES) - set(UPDATABLE) == {"uniqueness"}
    pool = make_pool()
    with pytest.raises(IpamError) as exc:
        services.pool_update(pool=pool, actor=actor, uniqueness=Uniqueness.PER_SHOOT)
    assert exc.value.field == "uniqueness"


def test_update_checks_the_rules_as_create_does(make_pool, actor) -> None:
    pool = make_pool()
    with pytest.raises(IpamError) as exc:
        make_pool("2001:db9::/32", project_quota=-1)
    assert exc.value.field == "project_quota"
    with pytest.raises(IpamError) as exc:  # refused on update too since the rules are checked in one place
        services.pool_update(pool=pool, actor=actor, project_quota=-1)
    assert exc.value.field == "project_quota"
    with pytest.raises(PrefixLengthNotAllowed):
        services.pool_update(pool=pool, actor=actor, min_prefix_length=60, max_prefix_length=56)
    pool.refresh_from_db()
    assert pool.project_quota is None and pool.min_prefix_length is None
