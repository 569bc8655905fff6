"""`python -m teleconsult` is the `teleconsult` command."""

from teleconsult.cli import main

raise SystemExit(main())
