"""Import a NetBox estate (prefixes, aggregates, VRFs, tenants) into the portal: see docs/netbox-import.md."""
