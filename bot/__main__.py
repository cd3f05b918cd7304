"""`python -m bot` runs the `aiinfra-digest` command."""

from bot.cli import main

raise SystemExit(main())
