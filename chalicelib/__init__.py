"""Sluice runtime: everything `app.py` imports. Never imports sluice_cli."""
