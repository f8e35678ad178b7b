"""Sluice runtime: everything `app.py` imports. Never imports chalicelib.cli."""
