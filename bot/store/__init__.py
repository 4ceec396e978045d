"""Durable storage: the delivery queue and per-issue triage records (SQLite or PostgreSQL)."""
