"""The backend contract suite on the Diffusers backend with a real tiny random-weight pipeline."""

import pytest

from abstractvision.testing.contract import BackendContract

pytestmark = pytest.mark.slow


@pytest.fixture
def backend(tiny_diffusers_backend):
    return tiny_diffusers_backend


@pytest.fixture
def contract_params():
    return {"steps": 2, "width": 64, "height": 64}


class TestDiffusersContract(BackendContract):
    cancel_at_phase = "step"  # Diffusers' step callback stops the pipeline mid-run
