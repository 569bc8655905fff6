"""The REST API, one module per feature: its routes, its wire schemas, its typed dependencies.

Each feature module has `routes(edge, *, deps…) -> Feature` (`signaling.http.api`); the
composition root builds the features the server has and `signaling.app.create_app` mounts them.
"""
