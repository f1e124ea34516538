"""The backend contract on stable-diffusion.cpp: fast with the fake sd-cli, slow on the real engine."""

import pytest

from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.testing.contract import BackendContract


@pytest.fixture
def backend(fake_sd_cli, model_file):
    return StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli")


@pytest.fixture
def contract_params():
    return {"steps": 2, "width": 64, "height": 64}


class TestSdcppContract(BackendContract):
    cancel_at_phase = "step"  # sd-cli's progress bar; the process is killed at the cancelled step


@pytest.mark.slow
class TestSdcppPythonModeContract(BackendContract):
    """The same contract on the real bindings and the random-weight SD 1.x checkpoint (1 step)."""

    cancel_at_phase = "step"

    @pytest.fixture
    def backend(self, sd_python_backend):
        return sd_python_backend

    @pytest.fixture
    def contract_params(self):
        return {"steps": 1, "width": 64, "height": 64}
