"""Grouping strategies: one module each, opening with what it models."""
