"""``python -m thunderbolt.reports``: the report endpoint on its own."""

import sys

from thunderbolt.reports.server import main

sys.exit(main())
