"""The contract suite run against the in-test backend (it checks the suite itself can fail)."""

import pytest

from contract.backend_contract import BackendContract


@pytest.fixture
def backend(recording_backend):
    return recording_backend


@pytest.fixture
def contract_params():
    return {"steps": 2, "width": 16, "height": 16}


class TestRecordingBackendContract(BackendContract):
    pass
