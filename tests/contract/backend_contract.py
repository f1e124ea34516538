"""The contract every backend passes, written once.

A backend's test module provides two fixtures (three with a secret) and one empty subclass::

    @pytest.fixture
    def backend(...):          # a ready VisionBackend (real engine, loopback server, ...)
    @pytest.fixture
    def contract_params():     # small generation params that backend accepts, e.g. {"steps": 2}
    @pytest.fixture
    def backend_secret():      # the API key configured into the backend (default: None,
                               # from tests/contract/conftest.py)

    class TestMyBackendContract(BackendContract):
        pass

The checks: honest capabilities, typed bad-input errors, the seed in metadata, progress start and
end, cancellation, idempotent unload, no secrets in ``repr``.
"""

from __future__ import annotations

import threading

import pytest

from abstractvision import VisionManager
from abstractvision.errors import (
    CapabilityNotSupportedError,
    GenerationCancelledError,
    InvalidRequestError,
)
from abstractvision.types import TASKS, GeneratedAsset
from fixtures.images import make_png


class BackendContract:
    #: Set False in a subclass for services that do not take or report seeds (documented there).
    reports_seed = True

    @pytest.fixture
    def manager(self, backend):
        return VisionManager(backend=backend)

    def test_capabilities_are_honest(self, backend, manager, contract_params):
        caps = backend.get_capabilities()
        assert "text_to_image" in caps.supported_tasks
        assert set(caps.supported_tasks) <= set(TASKS) | {"image_upscale"}
        for task in TASKS:
            if task in caps.supported_tasks:
                continue
            with pytest.raises(CapabilityNotSupportedError):
                if task == "text_to_video":
                    manager.generate_video("a cat")
                elif task == "image_to_video":
                    manager.image_to_video(make_png())
                elif task == "multi_view_image":
                    manager.generate_angles("a cat")
                elif task == "image_to_image":
                    manager.edit_image("a cat", make_png())
        if not caps.supports_mask and "image_to_image" in caps.supported_tasks:
            with pytest.raises(CapabilityNotSupportedError):
                manager.edit_image("a cat", make_png(), mask=make_png(mode="L"))

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

    def test_unload_is_idempotent_and_next_call_works(self, backend, manager, contract_params):
        backend.unload()
        backend.unload()
        assert manager.generate_image("a cat", **contract_params).data
        backend.unload()

    def test_no_secret_in_repr(self, backend, backend_secret):
        if backend_secret is None:
            pytest.skip("this backend has no secret configured")
        assert backend_secret not in repr(backend)
        assert backend_secret not in repr(getattr(backend, "config", None))
        assert backend_secret not in str(vars(backend).get("config", ""))
