"""The SQL adapter (SQLite by default, PostgreSQL when configured): one repository per package
of `rooms` (`consults`, `calls`, `records`, `duty`, `reporting`) on a shared `Database`, whose
`audited` transaction writes a change and its audit entry together; the schema, and Alembic."""
