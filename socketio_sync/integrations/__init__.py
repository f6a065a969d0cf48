"""Integrations with web frameworks (each imports its framework lazily)."""
