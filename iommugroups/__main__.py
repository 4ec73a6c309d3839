"""``python -m iommugroups``: the command-line tool."""

from ._cli.app import main

raise SystemExit(main())
