"""The shoot node controller: a shoot's Node objects keep the portal's nodes (and routes) true.

* :mod:`.decisions` — pure: from the Node objects a shoot shows and the nodes the
  portal holds to actions (register, remove, patch ``spec.podCIDRs``, drift, ignore).
* :mod:`.services` — applies the actions through the allocations node services.
* :mod:`.kubeconfig` — where a shoot's kubeconfig is found (by reference, never stored).
* :mod:`.loop` — the thin list/watch loop, one watcher per shoot, one work queue.
* :mod:`.metrics` — its Prometheus metrics (the health server is :mod:`controllers.health`).
"""
