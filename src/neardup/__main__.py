"""``python -m neardup``: the same as the ``neardup`` command."""

import sys

from .cli import main

sys.exit(main())
