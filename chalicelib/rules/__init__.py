"""Routing rules: schema (validation), match (compiled once), store (DynamoDB + cache)."""
