"""Web UI views of the IPAM domain, by page group.

* :mod:`.dashboard` — the dashboard and the search box;
* :mod:`.pools` — pools (tree, map, create, allocate) and allocations (detail, release);
* :mod:`.shoots` — shoots (list, create, detail, release) and their nodes;
* :mod:`.common` — what they share (pool tree rows, history tabs).

Views are thin: they parse a form, ask :mod:`accounts.roles` whether the user may
do it, call exactly one service or selector and render with :mod:`ipam_portal.ui`.
Every page requires a login and a role that may read; every write refuses (403) a
user whose role does not allow it, and the templates do not offer what the user
may not do.
"""
