"""Shoot block pools were named ``project/name#<shoot id>`` (``.1``, ``.2`` for later blocks).

They take the names :func:`allocations.services.shoot_ranges.block_pool_name` gives now —
``project/name``, else ``project/name (CIDR)``, else ``project/name (CIDR) 2`` — oldest
first, and so do their child pools (``…/pods``) and the block allocations labelled with
the old name. The audit trail keeps the names of its time (events are only read).
"""

import re

from django.db import migrations

OLD = re.compile(r"(?P<base>.+)#\d+(?:\.\d+)?")


def _readable(base: str, cidr: str, taken: set[str]) -> str:
    with_cidr = f"{base} ({cidr})"
    if base not in taken:
        return base
    if with_cidr not in taken:
        return with_cidr
    return next(f"{with_cidr} {n}" for n in range(2, len(taken) + 3) if f"{with_cidr} {n}" not in taken)


def rename(apps, schema_editor):  # noqa: ANN001, ANN201 (a migration's RunPython signature)
    Pool = apps.get_model("allocations", "Pool")
    Allocation = apps.get_model("allocations", "Allocation")
    taken = set(Pool.objects.values_list("name", flat=True))
    for pool in Pool.objects.filter(purpose="shoot-block", name__contains="#").order_by("created_at", "pk"):
        match = OLD.fullmatch(pool.name)
        if match is None:
            continue
        old, new = pool.name, _readable(match["base"], pool.cidr, taken)
        taken.discard(old)
        taken.add(new)
        pool.name = new
        pool.save(update_fields=["name"])
        Allocation.objects.filter(pk=pool.parent_allocation_id, label=old).update(label=new)
        for child in Pool.objects.filter(parent=pool, name__startswith=f"{old}/"):
            child_name = new + child.name[len(old) :]
            taken.discard(child.name)
            taken.add(child_name)
            child.name = child_name
            child.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("allocations", "0011_dashboard_indexes"),
    ]

    operations = [migrations.RunPython(rename, migrations.RunPython.noop)]
