"""Shared test support: chart rendering, Kubernetes schema validation, restricted checks."""
