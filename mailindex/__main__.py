"""`python -m mailindex`: the mailindex command."""

import sys

from mailindex.cli import main

sys.exit(main())
