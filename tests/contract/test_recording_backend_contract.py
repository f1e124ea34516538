"""The contract suite run against the in-test backend the manager tests use.

That the suite can fail is checked in ``test_contract_can_fail.py``.
"""

import pytest

from abstractvision.testing.contract import BackendContract


@pytest.fixture
def backend(recording_backend):
    return recording_backend


@pytest.fixture
def contract_params():
    return {"steps": 2, "width": 16, "height": 16}


class TestRecordingBackendContract(BackendContract):
    cancel_at_phase = "step"
