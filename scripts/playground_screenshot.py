"""Refresh the docs' picture of the browser playground, taken by the playground's own browser test.

    python scripts/playground_screenshot.py [PATH]     # default: docs/images/playground.png

It runs ``tests/server/test_playground.py::test_screenshot_after_a_generation`` (headless Debian
chromium driven by Playwright, a real server on the tiny random-weight Diffusers pipeline, two
generations) with ``PLAYGROUND_SCREENSHOT=PATH``, so the picture comes from the same tooling the
suite checks the page with. Needs the test extras, the diffusers extra and /usr/bin/chromium.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "tests" / "server" / "test_playground.py"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images" / "playground.png"
    target = target.resolve()
    started = time.time()
    os.environ["PLAYGROUND_SCREENSHOT"] = str(target)
    code = pytest.main([f"{TEST}::test_screenshot_after_a_generation", "-q", "-rs", "-p", "no:cacheprovider"])
    if code != 0:
        return int(code)
    if not target.exists() or target.stat().st_mtime < started:
        print(f"no screenshot written to {target} (was the test skipped? see above)", file=sys.stderr)
        return 1
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
