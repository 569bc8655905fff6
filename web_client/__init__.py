"""Static browser client (HTML, ES modules, CSS) served by the teleconsult server at `/`."""
