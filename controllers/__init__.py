"""Controllers that follow the garden (Shoots, Seeds, ManagedSeeds) and the shoots' Nodes.

An integration, like the admission webhook: the decisions are plain functions over Gardener's
objects and the portal's holdings, the watch loops are thin, and every write goes through the
allocations services. Nothing in the domain imports this package.
"""
