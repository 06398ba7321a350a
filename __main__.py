"""``python -m toetwitch``: the command line."""

import sys

from toetwitch.pipeline.cli import main

sys.exit(main())
