"""teleconsult's composition root: settings, bootstrap and the command line."""

__version__ = "0.1.0"
