"""The garden controller: Shoots, Seeds and ManagedSeeds of the garden cluster, followed by list + watch.

:mod:`.decisions` (pure: event + portal → actions), :mod:`.actions` (carry them out through the
allocations services), :mod:`.loop` (list/watch with the official client, resumption, 410,
backoff), :mod:`.controller` (leader election, health, the process). See docs/controllers.md.
"""
