"""``python3 -m pylua_bioxen_vm``: the ``bioxen`` command (cli/)."""

import sys

from .cli import main

sys.exit(main())
