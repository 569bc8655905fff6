"""Alembic migrations of the consult store's schema."""
