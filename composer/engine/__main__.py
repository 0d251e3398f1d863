"""`python -m composer.engine ...`: see `composer.engine.cli`."""

import sys

from composer.engine.cli import main

sys.exit(main())
