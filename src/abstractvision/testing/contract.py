"""The contract every backend passes, written once and shipped for plugin backends' own tests.

A backend's tests subclass :class:`BackendContract` and provide its fixtures (as methods of the
subclass, or at module or ``conftest.py`` level)::

    import pytest
    from abstractvision.testing.contract import BackendContract

    class TestMyBackendContract(BackendContract):
        @pytest.fixture
        def backend(self):            # required: a ready VisionBackend (real engine, local server, ...)
            with MyBackend(api_key="sk-test-123") as backend:
                yield backend

        @pytest.fixture
        def contract_params(self):    # required: small generation params the backend accepts
            return {"steps": 2, "width": 64, "height": 64}

        @pytest.fixture
        def backend_secret(self):     # optional: the API key configured into the backend
            return "sk-test-123"

Two class attributes describe what the backend does, so the checks can be exact:

* ``reports_seed = True``: set False for services that do not take or report seeds;
* ``cancel_at_phase = "start"``: the progress phase at whose first event the cancel check sets the
  cancel event. Backends that report sampling steps set ``"step"``, so the check stops them mid-run.

The checks: honest capabilities (every claimed task is implemented, claimed image tasks and masks
work, unclaimed tasks are refused), typed bad-input errors, the seed in metadata, progress start and
end, cancellation (before the start, from the progress callback, and after the first progress event
without running to the end), idempotent unload, no secret in ``repr``.

This module imports pytest (test code imports it; ``import abstractvision.testing`` does not).
"""

from __future__ import annotations

import io
import threading
from typing import Any, ClassVar

import pytest

from ..backends.base_backend import UPSCALE_TASK
from ..errors import CapabilityNotSupportedError, GenerationCancelledError, InvalidRequestError
from ..types import TASKS, GeneratedAsset
from ..vision_manager import VisionManager

#: Manager calls for the tasks a backend may leave unclaimed, each a call that must then be refused.
_UNCLAIMED_CALLS = {
    "image_to_image": lambda manager, png: manager.edit_image("a cat", png),
    "text_to_video": lambda manager, png: manager.generate_video("a cat"),
    "image_to_video": lambda manager, png: manager.image_to_video(png),
    "multi_view_image": lambda manager, png: manager.generate_angles("a cat"),
}


def _png(width: int = 64, height: int = 64, *, mode: str = "RGB") -> bytes:
    """A plain PNG (red in RGB, white in ``L``, the mode a mask uses) made with Pillow."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height), 255 if mode == "L" else (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


class BackendContract:
    """Subclass it in a backend's tests and provide the fixtures named in the module docstring."""

    #: False for services that do not take or report seeds.
    reports_seed: ClassVar[bool] = True
    #: The progress phase whose first event sets the cancel event in the cancel-after-start check.
    cancel_at_phase: ClassVar[str] = "start"

    @pytest.fixture
    def manager(self, backend: Any) -> VisionManager:
        return VisionManager(backend=backend)

    def test_capabilities_are_honest(self, backend, manager, contract_params):
        caps = backend.get_capabilities()
        assert "text_to_image" in caps.supported_tasks
        assert set(caps.supported_tasks) <= set(TASKS) | {UPSCALE_TASK}
        for task in caps.supported_tasks:
            assert backend._implements(task), f"{type(backend).__name__} claims {task} but does not implement it"
        width, height = contract_params.get("width", 64), contract_params.get("height", 64)
        png = _png(width, height)
        for task, call in _UNCLAIMED_CALLS.items():
            if task not in caps.supported_tasks:
                with pytest.raises(CapabilityNotSupportedError):
                    call(manager, png)
        if "image_to_image" not in caps.supported_tasks:
            return
        edit_params = {k: v for k, v in contract_params.items() if k not in ("width", "height")}
        mask = _png(width, height, mode="L")
        if caps.supports_mask:
            edited = manager.edit_image("a cat", png, mask=mask, **edit_params)
            assert edited.media_type == "image" and edited.data, "a claimed masked edit made no image"
        else:
            with pytest.raises(CapabilityNotSupportedError):
                manager.edit_image("a cat", png, mask=mask, **edit_params)
            edited = manager.edit_image("a cat", png, **edit_params)
            assert edited.media_type == "image" and edited.data, "a claimed edit made no image"

    def test_text_to_image_returns_an_image_with_provenance(self, manager, contract_params):
        asset = manager.generate_image("a red square", seed=1234, **contract_params)
        assert isinstance(asset, GeneratedAsset)
        assert asset.media_type == "image"
        assert asset.mime_type.startswith("image/")
        assert len(asset.data) > 0
        assert asset.metadata["task"] == "text_to_image"
        assert asset.metadata["backend"]
        if self.reports_seed:
            assert asset.metadata["seed"] == 1234

    @pytest.mark.parametrize(
        "bad",
        [{"prompt": ""}, {"width": -8}, {"steps": 0}, {"seed": -1}, {"guidance_scale": float("nan")}],
        ids=["empty-prompt", "negative-width", "zero-steps", "negative-seed", "nan-guidance"],
    )
    def test_bad_input_is_a_typed_error(self, manager, contract_params, bad):
        params = {**contract_params, **bad}
        prompt = params.pop("prompt", "a cat")
        with pytest.raises(InvalidRequestError) as info:
            manager.generate_image(prompt, **params)
        assert info.value.field == next(iter(bad))

    def test_progress_reports_start_and_end(self, manager, contract_params):
        events = []
        manager.generate_image("a cat", on_progress=events.append, **contract_params)
        phases = [e.phase for e in events]
        assert phases[0] == "start" and phases[-1] == "end"
        assert all(e.task == "text_to_image" for e in events)
        assert events[-1].fraction == 1.0

    def test_cancel_before_start(self, manager, contract_params):
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(GenerationCancelledError):
            manager.generate_image("a cat", cancel=cancel, **contract_params)

    def test_cancel_from_progress_callback(self, manager, contract_params):
        def stop(event):
            raise GenerationCancelledError("stop")

        with pytest.raises(GenerationCancelledError):
            manager.generate_image("a cat", on_progress=stop, **contract_params)

    def test_cancel_after_the_first_progress_event_stops_the_run(self, manager, contract_params):
        phase = self.cancel_at_phase
        cancel = threading.Event()
        phases: list[str] = []

        def on_progress(event):
            phases.append(event.phase)
            if event.phase == phase:
                cancel.set()

        try:
            manager.generate_image("a cat", on_progress=on_progress, cancel=cancel, **contract_params)
        except GenerationCancelledError:
            pass
        else:
            assert cancel.is_set(), f"the backend reported no {phase!r} event ({phases}); set cancel_at_phase"
            pytest.fail(f"the run finished although cancel was set at its first {phase!r} event: {phases}")
        after = phases[phases.index(phase) + 1 :]
        assert not [p for p in after if p in ("step", "end")], f"the run went on after the cancel: {phases}"

    def test_unload_is_idempotent_and_next_call_works(self, backend, manager, contract_params):
        backend.unload()
        backend.unload()
        assert manager.generate_image("a cat", **contract_params).data
        backend.unload()

    def test_no_secret_in_repr(self, backend, request):
        try:
            secret = request.getfixturevalue("backend_secret")
        except pytest.FixtureLookupError:
            secret = None
        if not secret:
            pytest.skip("no backend_secret fixture: this backend has no secret configured")
        assert secret not in repr(backend)
        assert secret not in repr(getattr(backend, "config", None))
        assert secret not in str(vars(backend).get("config", ""))


__all__ = ["BackendContract"]
