"""SQL storage of the consult domain (SQLite by default, PostgreSQL when configured)."""
