"""`python -m esap_executors.cwl` is `esap-cwltool`."""

import sys

from .main import main

sys.exit(main())
