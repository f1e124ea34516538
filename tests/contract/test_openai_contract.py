"""The backend contract against the OpenAI-compatible backend and the loopback server.

The local-endpoint shape sends ``seed``, and the backend records the seed it sent, so
``reports_seed`` holds. Image calls report only start and end (no steps), so the cancel check
cancels at ``start``, the default ``cancel_at_phase``.
"""

import pytest

from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.testing.contract import BackendContract

SECRET = "sk-contract-secret-123"


@pytest.fixture
def backend(openai_server):
    config = OpenAICompatibleBackendConfig(base_url=openai_server.base_url, api_key=SECRET, model_id="sd-local")
    with OpenAICompatibleVisionBackend(config=config) as backend:
        yield backend


@pytest.fixture
def contract_params():
    return {"steps": 2, "width": 16, "height": 16}


@pytest.fixture
def backend_secret():
    return SECRET


class TestOpenAICompatibleContract(BackendContract):
    pass
