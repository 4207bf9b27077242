"""Slurpers: scheduled plugins that measure. See slurpers/api.py."""
