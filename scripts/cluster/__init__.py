"""Python tooling of the control-plane tier (scripts/cluster-up, scripts/cluster-down)."""
