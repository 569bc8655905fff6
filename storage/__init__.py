"""Adapters that keep the consult domain's data: the SQL repositories and their migrations.

`rooms` declares what it needs from storage (each package's `ports.py`); this package
implements it and is the only one that speaks SQL. Only the composition root imports it.
"""
