"""Allow ``python -m specsoil``."""

from specsoil.cli import main

raise SystemExit(main())
