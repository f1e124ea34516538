"""stable-diffusion.cpp backend against a fake ``sd-cli``: config, argv, files, progress, failures.

The real engine (sd-cli and the bindings on a random-weight checkpoint) is exercised in
``test_stable_diffusion_cpp_real.py``; here a small executable stands in for sd-cli so that the
command line, the process handling and the error paths run in milliseconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from abstractvision import VisionManager
from abstractvision.backends import create_backend
from abstractvision.backends.stable_diffusion_cpp import (
    StableDiffusionCppBackendConfig,
    StableDiffusionCppVisionBackend,
)
from abstractvision.config import resolve
from abstractvision.errors import (
    BackendNotConfiguredError,
    CapabilityNotSupportedError,
    EngineError,
    GenerationCancelledError,
    InvalidRequestError,
    ModelNotAvailableError,
    OptionalDependencyMissingError,
    RequestTimeoutError,
)
from abstractvision.types import ImageEditRequest, ImageGenerationRequest
from fixtures.images import make_jpeg, make_png

SMALL = {"width": 64, "height": 64, "steps": 3, "seed": 11}


@pytest.fixture
def backend(fake_sd_cli, model_file):
    return StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli")


@pytest.fixture
def manager(backend):
    return VisionManager(backend=backend)


def flag_value(argv: list[str], flag: str) -> str:
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose once it has no state "R"/"S"
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


# ---- configuration -------------------------------------------------------------------------------
def test_config_reads_environment_under_explicit_values(tmp_path):
    env = {
        "ABSTRACTVISION_SDCPP_MODEL": "/models/sd15.safetensors",
        "ABSTRACTVISION_SDCPP_BIN": "/opt/sd/sd-cli",
        "ABSTRACTVISION_SDCPP_MODE": "cli",
        "ABSTRACTVISION_SDCPP_EXTRA_ARGS": "--vae-tiling --rng 'cpu'",
        "ABSTRACTVISION_SDCPP_TIMEOUT_S": "90",
        "ABSTRACTVISION_SDCPP_VAE": "/models/vae.safetensors",
        "ABSTRACTVISION_SDCPP_MODELS_DIR": "/models",
    }
    config = resolve(StableDiffusionCppBackendConfig, env, mode="python", vae=None).build()
    assert config.model == "/models/sd15.safetensors"
    assert config.sd_cli_path == "/opt/sd/sd-cli"
    assert config.mode == "python"  # explicit wins
    assert config.vae == "/models/vae.safetensors"  # None override = not given
    assert config.extra_args == ("--vae-tiling", "--rng", "cpu")
    assert config.timeout_s == 90.0
    assert config.models_dir == "/models"


def test_defaults_and_create_backend_by_name():
    backend = create_backend("sdcpp", {}, model="/m/sd.safetensors")
    assert isinstance(backend, StableDiffusionCppVisionBackend)
    assert backend.config.sd_cli_path == "sd-cli"
    assert backend.config.mode == "auto"
    assert backend.config.timeout_s is None


def test_missing_model_names_the_options_and_variables():
    with pytest.raises(BackendNotConfiguredError) as info:
        create_backend("sdcpp", {})
    message = str(info.value)
    for name in ("model=", "diffusion_model=", "ABSTRACTVISION_SDCPP_MODEL", "ABSTRACTVISION_SDCPP_DIFFUSION_MODEL"):
        assert name in message


@pytest.mark.parametrize("bad", [{"mode": "gpu"}, {"timeout_s": 0}], ids=["mode", "timeout"])
def test_bad_config_values_are_refused(bad):
    with pytest.raises(BackendNotConfiguredError, match=next(iter(bad))):
        StableDiffusionCppBackendConfig(model="m.safetensors", **bad)


def test_missing_model_file_is_named_before_running(fake_sd_cli, tmp_path, manager, backend):
    missing = tmp_path / "nope" / "vae.safetensors"
    backend.config = StableDiffusionCppBackendConfig(
        model=backend.config.model, vae=str(missing), sd_cli_path=backend.config.sd_cli_path
    )
    with pytest.raises(ModelNotAvailableError) as info:
        manager.generate_image("a cat", **SMALL)
    assert "vae" in str(info.value) and str(missing) in str(info.value)
    assert fake_sd_cli.runs() == []


# ---- command line --------------------------------------------------------------------------------
def test_single_file_argv(fake_sd_cli, manager, model_file):
    asset = manager.generate_image("a red fox", negative_prompt="blurry", guidance_scale=5.5, **SMALL)
    argv = fake_sd_cli.last_argv()
    assert argv[:2] == ["-m", str(model_file)]
    assert flag_value(argv, "-p") == "a red fox"
    assert flag_value(argv, "-n") == "blurry"
    assert (flag_value(argv, "-W"), flag_value(argv, "-H"), flag_value(argv, "--steps")) == ("64", "64", "3")
    assert flag_value(argv, "-s") == "11"
    assert flag_value(argv, "--cfg-scale") == "5.5"
    for absent in ("--diffusion-model", "-i", "--mask", "--strength"):
        assert absent not in argv
    output = Path(flag_value(argv, "-o"))
    assert output.name == "output.png" and not output.parent.exists()  # private temp dir is gone
    assert fake_sd_cli.runs()[-1]["cwd"] == str(output.parent)
    assert asset.metadata["mode"] == "cli"
    assert asset.metadata["model"] == model_file.name
    assert (asset.metadata["seed"], asset.metadata["steps"], asset.metadata["guidance_scale"]) == (11, 3, 5.5)


def test_component_model_argv_and_defaults(fake_sd_cli, tmp_path):
    files = {}
    for name in ("diffusion_model", "vae", "llm", "llm_vision", "clip_l", "clip_g", "t5xxl"):
        files[name] = tmp_path / f"{name}.gguf"
        files[name].write_bytes(b"x")
    backend = StableDiffusionCppVisionBackend(
        sd_cli_path=str(fake_sd_cli.path), **{name: str(path) for name, path in files.items()}
    )
    asset = VisionManager(backend=backend).generate_image("a lighthouse", steps=2, seed=3)
    argv = fake_sd_cli.last_argv()
    expected = {
        "--diffusion-model": "diffusion_model",
        "--vae": "vae",
        "--llm": "llm",
        "--llm_vision": "llm_vision",
        "--clip_l": "clip_l",
        "--clip_g": "clip_g",
        "--t5xxl": "t5xxl",
    }
    for flag, name in expected.items():
        assert flag_value(argv, flag) == str(files[name])
    assert "-m" not in argv
    assert (flag_value(argv, "-W"), flag_value(argv, "--cfg-scale")) == ("1024", "1.0")
    assert asset.metadata["model"] == "diffusion_model.gguf"
    assert asset.metadata["model_files"]["llm"] == "llm.gguf"


def test_relative_paths_resolve_against_cwd(fake_sd_cli, tmp_path):
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "sd.safetensors").write_bytes(b"x")
    backend = StableDiffusionCppVisionBackend(
        model="models/sd.safetensors", cwd=str(tmp_path), sd_cli_path=str(fake_sd_cli.path)
    )
    VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert flag_value(fake_sd_cli.last_argv(), "-m") == str(tmp_path / "models" / "sd.safetensors")
    assert fake_sd_cli.runs()[-1]["cwd"] == str(tmp_path)


def test_extra_args_and_plain_extra_values_become_flags(fake_sd_cli, model_file):
    backend = StableDiffusionCppVisionBackend(
        model=str(model_file), sd_cli_path=str(fake_sd_cli.path), extra_args="--vae-tiling --rng cpu"
    )
    asset = VisionManager(backend=backend).generate_image(
        "a cat", sampling_method="euler", clip_skip=2, diffusion_fa=True, offload_to_cpu=False, **SMALL
    )
    argv = fake_sd_cli.last_argv()
    assert flag_value(argv, "--sampling-method") == "euler"
    assert flag_value(argv, "--clip-skip") == "2"
    assert "--diffusion-fa" in argv and "--offload-to-cpu" not in argv
    assert argv[argv.index("--vae-tiling") : argv.index("--vae-tiling") + 3] == ["--vae-tiling", "--rng", "cpu"]
    assert asset.metadata["sampler"] == "euler"
    assert asset.metadata["options"] == {
        "sampling_method": "euler",
        "clip_skip": 2,
        "diffusion_fa": True,
        "offload_to_cpu": False,
    }
    assert asset.metadata["extra_args"] == ["--vae-tiling", "--rng", "cpu"]


def test_no_callbacks_or_internal_keys_leak_into_argv(fake_sd_cli, backend):
    def on_progress(event):
        pass

    request = ImageGenerationRequest(
        "a cat",
        **SMALL,
        extra={"hook": on_progress, "_trace_id": "abc", "nested": {"a": 1}, "items": [1, 2], "none": None},
    )
    backend.generate_image_with_progress(backend.normalize_generate_image_request(request), on_progress)
    argv = fake_sd_cli.last_argv()
    assert all(isinstance(arg, str) for arg in argv)
    joined = " ".join(argv)
    for leaked in ("hook", "on_progress", "function", "_trace", "trace-id", "abc", "nested", "items", "--none"):
        assert leaked not in joined


def test_extra_cannot_override_request_fields(backend, fake_sd_cli):
    with pytest.raises(InvalidRequestError) as info:
        backend.generate_image(ImageGenerationRequest("a cat", **SMALL, extra={"seed": 5}))
    assert info.value.field == "extra['seed']"
    assert fake_sd_cli.runs() == []


def test_edit_passes_image_and_mask_files_and_strength(fake_sd_cli, manager):
    import hashlib

    image, mask = make_png(64, 64), make_png(64, 64, mode="L")
    asset = manager.edit_image("paint it blue", image, mask=mask, strength=0.4, steps=2, seed=5)
    run = fake_sd_cli.runs()[-1]
    argv = run["argv"]
    assert run["init_sha256"] == hashlib.sha256(image).hexdigest()
    assert run["mask_sha256"] == hashlib.sha256(mask).hexdigest()
    assert flag_value(argv, "--strength") == "0.4"
    assert (flag_value(argv, "-W"), flag_value(argv, "-H")) == ("64", "64")
    assert not Path(flag_value(argv, "-i")).exists() and not Path(flag_value(argv, "--mask")).exists()
    assert asset.metadata["strength"] == 0.4 and asset.metadata["task"] == "image_to_image"


def test_edit_input_in_a_format_sd_cli_cannot_read_is_converted(fake_sd_cli, manager):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="WEBP")
    manager.edit_image("x", buffer.getvalue(), steps=1, seed=1)
    assert flag_value(fake_sd_cli.last_argv(), "-i").endswith(".png")
    manager.edit_image("x", make_jpeg(64, 64), steps=1, seed=1)
    assert flag_value(fake_sd_cli.last_argv(), "-i").endswith(".jpg")


@pytest.mark.timeout(60)
def test_an_edit_decodes_its_input_and_mask_once(fake_sd_cli, manager, pil_decodes):
    image, mask = make_png(64, 64), make_png(64, 64, mode="L")
    manager.edit_image("paint it blue", image, mask=mask, strength=0.4, steps=2, seed=5)
    # once each, while the manager validates; the backend reads the size it found, and sd-cli (another
    # process) reads the files itself
    assert (pil_decodes.count(image), pil_decodes.count(mask)) == (1, 1)
    assert len(fake_sd_cli.runs()) == 1


@pytest.mark.timeout(60)
def test_a_backend_used_without_a_manager_decodes_an_edit_input_once(fake_sd_cli, backend, pil_decodes):
    image = make_png(64, 64)
    asset = backend.edit_image(ImageEditRequest("paint it blue", image, steps=1, seed=5))
    assert pil_decodes.count(image) == 1  # by normalize_edit_image_request; the run reuses what it found
    assert (asset.metadata["width"], asset.metadata["height"]) == (64, 64)


@pytest.mark.timeout(60)
def test_an_input_sd_cli_cannot_read_is_decoded_once_more_to_convert_it(fake_sd_cli, manager, pil_decodes):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="WEBP")
    manager.edit_image("x", buffer.getvalue(), steps=1, seed=1)
    assert pil_decodes.count(buffer.getvalue()) == 2  # validation, then the WEBP -> PNG sd-cli can read


def test_the_largest_seed_is_passed_and_recorded_and_one_more_is_refused(fake_sd_cli, manager, backend):
    top = backend.get_capabilities().max_seed
    assert top == 2**32 - 1  # sd.cpp's cpu and std_default RNGs keep a seed's low 32 bits
    asset = manager.generate_image("a cat", width=64, height=64, steps=1, seed=top)
    assert asset.metadata["seed"] == top and flag_value(fake_sd_cli.last_argv(), "-s") == str(top)
    for bad in (top + 1, -1):  # one would wrap onto seed 0, -1 means "random" to sd.cpp
        with pytest.raises(InvalidRequestError) as info:
            manager.generate_image("a cat", width=64, height=64, steps=1, seed=bad)
        assert info.value.field == "seed" and f"0..{top}" in str(info.value)
    assert len(fake_sd_cli.runs()) == 1


def test_progress_forms_take_a_normalized_request(fake_sd_cli, backend):
    with pytest.raises(InvalidRequestError) as info:
        backend.generate_image_with_progress(ImageGenerationRequest("a cat", width=64, height=64))
    assert info.value.field == "seed" and "normalize_" in str(info.value)
    assert fake_sd_cli.runs() == []


def test_seed_is_chosen_and_recorded_when_not_given(fake_sd_cli, manager):
    asset = manager.generate_image("a cat", width=64, height=64, steps=1)
    assert isinstance(asset.metadata["seed"], int)
    assert flag_value(fake_sd_cli.last_argv(), "-s") == str(asset.metadata["seed"])


# ---- limits ----------------------------------------------------------------------------------------
def test_sizes_sd_cpp_cannot_take_are_refused_with_the_nearest_valid_ones(manager, fake_sd_cli):
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", width=100, height=64)
    assert info.value.field == "width" and "96 or 104" in str(info.value)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", width=64, height=32)
    assert info.value.field == "height" and "64" in str(info.value)
    with pytest.raises(InvalidRequestError) as info:
        manager.edit_image("a cat", make_png(100, 64))
    assert info.value.field == "image" and "96 or 104" in str(info.value)
    assert fake_sd_cli.runs() == []


def test_component_models_need_multiples_of_16(fake_sd_cli, tmp_path):
    model = tmp_path / "flux.gguf"
    model.write_bytes(b"x")
    backend = StableDiffusionCppVisionBackend(diffusion_model=str(model), sd_cli_path=str(fake_sd_cli.path))
    with pytest.raises(InvalidRequestError, match="992 or 1008"):
        VisionManager(backend=backend).generate_image("a cat", width=1000, height=1024)


@pytest.mark.parametrize("strength", [1.5, -0.1, "strong", True])
def test_bad_strength_is_refused(manager, strength):
    with pytest.raises(InvalidRequestError, match="strength"):
        manager.edit_image("a cat", make_png(), strength=strength)


def test_capabilities_and_unsupported_tasks(backend, manager):
    caps = backend.get_capabilities()
    assert caps.supported_tasks == ("text_to_image", "image_to_image")
    assert caps.supports_mask and not caps.supports_control_image
    with pytest.raises(CapabilityNotSupportedError):
        manager.generate_video("a cat")
    with pytest.raises(CapabilityNotSupportedError):
        manager.image_to_video(make_png())
    with pytest.raises(CapabilityNotSupportedError):
        manager.generate_angles("a cat")
    with pytest.raises(CapabilityNotSupportedError):
        manager.generate_image("a cat", control_image=make_png())


# ---- progress, failures, timeout, cancel -------------------------------------------------------------
def test_progress_comes_from_sd_cli_step_lines(manager):
    events = []
    manager.generate_image("a cat", on_progress=events.append, **{**SMALL, "steps": 4})
    assert [(e.phase, e.step) for e in events] == [
        ("start", 0),
        ("step", 1),
        ("step", 2),
        ("step", 3),
        ("step", 4),
        ("end", 4),
    ]  # the tensor-loading bar (1130 tensors) is not reported as a step
    assert [e.total_steps for e in events if e.phase == "step"] == [4, 4, 4, 4]


def test_non_zero_exit_is_an_engine_error_with_code_and_stderr_tail(fake_sd_cli, manager):
    fake_sd_cli.behave("fail")
    with pytest.raises(EngineError) as info:
        manager.generate_image("a cat", **SMALL)
    assert info.value.exit_code == 3
    assert "fake failure: tensor 'x' has wrong shape" in info.value.stderr_tail
    assert "exited with code 3" in str(info.value) and "wrong shape" in str(info.value)


def test_success_without_an_image_is_an_engine_error(fake_sd_cli, manager):
    fake_sd_cli.behave("noimage")
    with pytest.raises(EngineError, match="wrote no image"):
        manager.generate_image("a cat", **SMALL)


def _wait_for_pids(fake_sd_cli) -> list[int]:
    for _ in range(200):
        if fake_sd_cli.pids.exists() and fake_sd_cli.pids.read_text().strip():
            return [int(pid) for pid in fake_sd_cli.pids.read_text().split()]
        time.sleep(0.02)
    raise AssertionError("the fake sd-cli never started")


def test_timeout_kills_the_whole_process_group(fake_sd_cli, model_file):
    fake_sd_cli.behave("hang")
    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), timeout_s=1.0)
    started = time.perf_counter()
    with pytest.raises(RequestTimeoutError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert time.perf_counter() - started < 10
    assert info.value.timeout_s == 1.0 and "timeout_s" in str(info.value)
    sd_cli_pid, child_pid = _wait_for_pids(fake_sd_cli)
    assert not pid_alive(sd_cli_pid)  # killed and reaped
    for _ in range(100):  # the grandchild is re-parented to init, which reaps it shortly
        if not pid_alive(child_pid):
            break
        time.sleep(0.02)
    assert not pid_alive(child_pid)


def test_cancel_event_stops_a_running_sd_cli(fake_sd_cli, manager):
    fake_sd_cli.behave("hang")
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        with pytest.raises(GenerationCancelledError):
            manager.generate_image("a cat", cancel=cancel, **SMALL)
    finally:
        timer.cancel()
    sd_cli_pid, _ = _wait_for_pids(fake_sd_cli)
    assert not pid_alive(sd_cli_pid)


def test_progress_callback_can_cancel_mid_run(fake_sd_cli, manager):
    fake_sd_cli.behave("slow")

    def stop_at_step_two(event):
        if event.phase == "step" and event.step == 2:
            raise GenerationCancelledError("enough")

    started = time.perf_counter()
    with pytest.raises(GenerationCancelledError):
        manager.generate_image("a cat", on_progress=stop_at_step_two, **{**SMALL, "steps": 20})
    assert time.perf_counter() - started < 5  # 20 slow steps would take 6 s


# ---- missing engines: clear error, no download attempted --------------------------------------------
def test_missing_sd_cli_in_cli_mode_explains_both_installs(block_network, model_file, tmp_path):
    backend = StableDiffusionCppVisionBackend(
        model=str(model_file), sd_cli_path=str(tmp_path / "no-sd-cli"), mode="cli"
    )
    with pytest.raises(OptionalDependencyMissingError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert "sd-cli" in str(info.value) and info.value.extra == "sdcpp"
    assert block_network == []


def test_no_engine_at_all_explains_both_installs(block_network, model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "stable_diffusion_cpp", None)  # the bindings are not installed
    monkeypatch.setenv("PATH", "/nonexistent")
    backend = StableDiffusionCppVisionBackend(model=str(model_file))
    with pytest.raises(OptionalDependencyMissingError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    message = str(info.value)
    assert 'pip install "abstractvision[sdcpp]"' in message and "sd-cli" in message and "PATH" in message
    with pytest.raises(OptionalDependencyMissingError):
        backend.preload()
    assert block_network == []


def test_python_mode_without_bindings(model_file, monkeypatch, block_network):
    monkeypatch.setitem(sys.modules, "stable_diffusion_cpp", None)
    backend = StableDiffusionCppVisionBackend(model=str(model_file), mode="python")
    with pytest.raises(OptionalDependencyMissingError, match=r"abstractvision\[sdcpp\]"):
        backend.generate_image(ImageGenerationRequest("a cat", **SMALL))
    assert block_network == []


def test_auto_mode_prefers_sd_cli(fake_sd_cli, model_file, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_sd_cli.path.parent))
    assert StableDiffusionCppVisionBackend(model=str(model_file)).mode == "cli"


def test_auto_mode_falls_back_to_the_bindings(model_file, monkeypatch):
    pytest.importorskip("stable_diffusion_cpp")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert StableDiffusionCppVisionBackend(model=str(model_file)).mode == "python"


def test_python_mode_refuses_options_the_bindings_do_not_take(model_file):
    pytest.importorskip("stable_diffusion_cpp")
    backend = StableDiffusionCppVisionBackend(model=str(model_file), mode="python")
    with pytest.raises(InvalidRequestError) as info:
        backend.generate_image(ImageGenerationRequest("a cat", **SMALL, extra={"no_such_option": 1}))
    assert info.value.field == "extra['no_such_option']"
    assert not backend._engine.loaded  # refused before loading anything


# ---- catalog ------------------------------------------------------------------------------------------
def test_catalog_lists_configured_files_and_the_models_directory(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("flux-q4.gguf", "sdxl.safetensors", "notes.txt"):
        (models / name).write_bytes(b"x")
    (tmp_path / "vae.safetensors").write_bytes(b"x")
    backend = StableDiffusionCppVisionBackend(
        model=str(models / "sdxl.safetensors"), vae=str(tmp_path / "vae.safetensors"), models_dir=str(models)
    )
    listed = backend.list_provider_models()
    assert [info.raw["name"] for info in listed] == ["sdxl.safetensors", "vae.safetensors", "flux-q4.gguf"]
    assert [info.raw["role"] for info in listed] == ["model", "vae", "models_dir"]
    assert listed[0].capabilities == ("text_to_image", "image_to_image")
    assert [i.raw["name"] for i in VisionManager(backend=backend).list_provider_models(task="text_to_image")] == [
        "sdxl.safetensors",
        "flux-q4.gguf",
    ]
    assert backend.list_provider_models(task="text_to_video") == []


def test_a_models_directory_alone_lists_but_cannot_generate(tmp_path, block_network):
    (tmp_path / "sd15.safetensors").write_bytes(b"x")
    backend = StableDiffusionCppVisionBackend(models_dir=str(tmp_path))
    assert [info.raw["name"] for info in backend.list_provider_models()] == ["sd15.safetensors"]
    with pytest.raises(BackendNotConfiguredError, match="needs a model file"):
        VisionManager(backend=backend).generate_image("a cat", width=64, height=64)
    with pytest.raises(BackendNotConfiguredError, match="needs a model file"):
        StableDiffusionCppVisionBackend()
    assert block_network == []


def test_a_batch_of_one_without_a_seed_keeps_the_seed_the_backend_drew(backend):
    """A one-item batch leaves the seed to the backend (as a single call does); the seed sd.cpp's
    normalize hook drew must reach the run, not be replaced by "no seed" (served jobs are batches)."""
    from abstractvision import VisionManager

    [asset] = VisionManager(backend=backend).generate_image_batch("a cat", count=1)
    assert isinstance(asset.metadata["seed"], int)
