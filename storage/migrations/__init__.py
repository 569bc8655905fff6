"""Alembic migrations of the schema in `storage.sql.schema`.

Revision ids (0001, 0002, …) never change: every database records the one it is at.
"""
