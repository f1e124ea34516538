"""Defaults for the contract suite's fixtures; a backend's module overrides what applies to it."""

import pytest


@pytest.fixture
def backend_secret():
    """No secret configured (backends with an API key override this with the key)."""
    return None
