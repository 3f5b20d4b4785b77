"""``python -m pycontainers.runtime``: the same as the ``pycontainers-runtime`` command."""

import sys

from pycontainers.runtime.cli import main

sys.exit(main())
