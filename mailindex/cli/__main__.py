"""`python -m mailindex.cli`, as the `mailindex` command."""

import sys

from mailindex.cli import main

sys.exit(main())
