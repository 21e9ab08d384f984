"""`python -m kaon` runs the CLI."""

from kaon.cli import main

raise SystemExit(main())
