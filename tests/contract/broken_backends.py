"""Deliberately broken backends, each with one defect, under the shipped contract suite.

Not collected by the normal run (the name has no ``test_`` prefix): ``test_contract_can_fail.py``
runs this file through pytester and checks that exactly the checks matching each defect fail.
``TestHonestBackend`` is the same backend without a defect, so a failure elsewhere means the suite
fails for a wrong reason.
"""

from __future__ import annotations

import pytest

from abstractvision.errors import GenerationCancelledError
from abstractvision.progress import ProgressReporter, as_reporter
from abstractvision.testing.contract import BackendContract
from abstractvision.types import VisionBackendCapabilities
from fixtures.fake_backend import RecordingBackend

SECRET = "sk-broken-backend-secret-42"


class LyingBackend(RecordingBackend):
    """Claims text_to_video, which it does not implement."""

    def get_capabilities(self):
        caps = super().get_capabilities()
        return VisionBackendCapabilities(
            supported_tasks=(*caps.supported_tasks, "text_to_video"), supports_mask=caps.supports_mask
        )


class LeakyBackend(RecordingBackend):
    """Keeps its API key in plain view: ``repr`` shows it."""

    def __init__(self, api_key: str):
        super().__init__()
        self.api_key = api_key

    def __repr__(self) -> str:
        return f"LeakyBackend(api_key={self.api_key!r})"


class CancelIgnoringBackend(RecordingBackend):
    """Reports every step but swallows the cancel its reporter raises, so a cancelled run goes on."""

    def _make(self, task, request, progress_callback=None):
        reporter = as_reporter(progress_callback, task)

        def forward(event):
            try:
                reporter(event)
            except GenerationCancelledError:
                pass  # the defect

        return super()._make(task, request, ProgressReporter(task, forward))


@pytest.fixture
def contract_params():
    return {"steps": 3, "width": 16, "height": 16}


@pytest.fixture
def backend_secret():
    """The key the secret check looks for (only LeakyBackend holds it)."""
    return SECRET


class TestHonestBackend(BackendContract):
    cancel_at_phase = "step"

    @pytest.fixture
    def backend(self):
        return RecordingBackend()


class TestLyingBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return LyingBackend()


class TestLeakyBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return LeakyBackend(SECRET)


class TestCancelIgnoringBackend(BackendContract):
    cancel_at_phase = "step"

    @pytest.fixture
    def backend(self):
        return CancelIgnoringBackend()
