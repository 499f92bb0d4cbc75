"""The offline verifier moved to `auditlog.verify` (`python -m auditlog.verify BUNDLE`). This name
keeps working for a release, because export bundles made before the move name it in their README."""

from __future__ import annotations

import sys

from auditlog.verify import *  # noqa: F403
from auditlog.verify import main

if __name__ == "__main__":
    sys.exit(main())
