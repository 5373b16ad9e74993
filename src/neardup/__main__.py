"""``python -m neardup``: the ``neardup`` command; also what ``spark-submit .../neardup/__main__.py`` runs."""

import os
import sys

if __name__ == "__main__" and not __package__:  # run as a script (spark-submit): the package folder
    here = os.path.dirname(os.path.abspath(__file__))  # is no place to import modules from
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

from neardup.cli import main

sys.exit(main())
