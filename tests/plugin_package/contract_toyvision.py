"""The toy plugin's own contract test, as a plugin author writes it against the shipped suite.

Not collected by this project's test run (the name does not start with ``test_``):
``tests/test_plugin_backend.py`` runs it in a separate pytest process where the plugin is
installed through its entry point, as it would be in the plugin's own repository.
"""

from __future__ import annotations

import pytest

from abstractvision.backends import create_backend
from abstractvision.testing.contract import BackendContract

SECRET = "sk-toy-secret-123"


class TestToyContract(BackendContract):
    cancel_at_phase = "step"

    @pytest.fixture
    def backend(self):
        with create_backend("toy", environ={"TOYVISION_API_KEY": SECRET}) as backend:
            yield backend

    @pytest.fixture
    def contract_params(self):
        return {"steps": 3, "width": 32, "height": 32}

    @pytest.fixture
    def backend_secret(self):
        return SECRET
