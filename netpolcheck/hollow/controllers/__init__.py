"""Controllers of the hollow cluster that run over the object store (no HTTP in between)."""
