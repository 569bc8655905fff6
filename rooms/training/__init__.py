"""Remote training: one lecturer, many trainees across the institutions a training targets.

A feature package beside calls, records and duty: it imports only the kernel (`rooms.consults`:
people, institutions, the permission table, the audit entry). See docs/training.md.
"""
