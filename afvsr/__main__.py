"""`python -m afvsr ...` (also what torchrun runs: `torchrun ... -m afvsr train -c CONFIG`)."""

import sys

from afvsr.cli import main

sys.exit(main())
