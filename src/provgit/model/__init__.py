"""The desired state: strict, frozen models per kind, and findings pinned to data paths."""
