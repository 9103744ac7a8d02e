"""The desired state: what the YAML files declare, read, checked and typed."""
