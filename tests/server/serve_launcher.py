"""``abstractvision ARGS`` with the slow test backend registered as ``slow`` (for server subprocesses)."""

import sys

from abstractvision.backends import register_backend
from abstractvision.cli import main

if __name__ == "__main__":
    register_backend("slow", "abstractvision.testing.slow:SlowBackend", description="slow test backend")
    sys.argv = ["abstractvision", *sys.argv[1:]]
    main()
