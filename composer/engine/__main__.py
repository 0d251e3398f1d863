"""`python -m composer.engine ...`: see `composer.engine.cli`."""

import os
import sys

# Before transformers is imported: its progress bars would bury our progress and errors.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from composer.engine.cli import main  # noqa: E402

sys.exit(main())
