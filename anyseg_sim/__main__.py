"""``python -m anyseg_sim``: the same as ``anyseg-synthesize``."""

import sys

from .cli import main

sys.exit(main())
