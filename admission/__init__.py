"""The Shoot admission webhook: Gardener asks the portal for a new shoot's ranges (docs/admission.md)."""
