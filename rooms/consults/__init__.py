"""The kernel of the consult domain: consults and their lifecycle, people, institutions, the
permission table, audit, the domain errors, intake forms, invitations and expiry."""
