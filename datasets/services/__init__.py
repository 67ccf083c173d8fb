"""Writes on the knowledge base, one module per resource (keyword-only, typed)."""
