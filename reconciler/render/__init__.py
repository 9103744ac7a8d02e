"""Showing plans and apply reports as text, Markdown and JSON."""
