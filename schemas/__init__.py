"""JSON schemas shipped with reconciler (the top-level schemas/ directory)."""
