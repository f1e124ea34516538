"""LoRA on the stable-diffusion.cpp backend against the fake ``sd-cli``: folder, tags, names, refusals.

The real engine's answers (the adapter changes the image, equals a direct sd-cli run, leaves no trace
on the next call) are in ``test_sdcpp_lora_real.py``; here the command line and the checks made
before anything runs are pinned in milliseconds.
"""

from __future__ import annotations

import os

import pytest

from abstractvision import LoRAAdapterSpec, VisionManager
from abstractvision.backends.stable_diffusion_cpp import (
    StableDiffusionCppBackendConfig,
    StableDiffusionCppVisionBackend,
)
from abstractvision.config import resolve
from abstractvision.errors import AdapterNotAvailableError, InvalidRequestError
from fixtures.images import make_png

SMALL = {"width": 64, "height": 64, "steps": 2, "seed": 3}


def adapter_file(path):
    """A file with the start of a safetensors file (what the backend checks; the fake never reads it)."""
    import numpy as np
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"lora_unet_x.alpha": np.array(1.0, dtype=np.float16)}, str(path))
    return path


@pytest.fixture
def lora_dir(tmp_path):
    folder = tmp_path / "loras"
    adapter_file(folder / "ink.safetensors")
    adapter_file(folder / "styles" / "wash.safetensors")
    (folder / "notes.txt").write_text("not an adapter")
    return folder


@pytest.fixture
def manager(fake_sd_cli, model_file, lora_dir):
    backend = StableDiffusionCppVisionBackend(
        model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli", lora_dir=str(lora_dir)
    )
    return VisionManager(backend=backend)


def flag_value(argv, flag):
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def test_the_adapter_becomes_a_link_in_a_folder_of_the_call_and_a_tag_after_the_prompt(manager, fake_sd_cli, tmp_path):
    own = adapter_file(tmp_path / "elsewhere" / "grain.safetensors")
    asset = manager.generate_image("a lighthouse", lora_adapters=[LoRAAdapterSpec(str(own), scale=0.75)], **SMALL)
    run = fake_sd_cli.runs()[-1]
    argv = run["argv"]
    assert flag_value(argv, "-p") == "a lighthouse<lora:grain.safetensors:0.75>"
    folder = flag_value(argv, "--lora-model-dir")
    assert run["loras"] == {"grain.safetensors": str(own.resolve())}
    assert argv[-2:][0] == "-o" and argv.index("--lora-model-dir") == len(argv) - 4  # after extra_args, before -o
    assert not os.path.exists(folder)  # removed with the call's folder
    assert asset.metadata["prompt"] == "a lighthouse"  # the caller's prompt, not the tags
    assert asset.metadata["lora_files"] == {"grain": "grain.safetensors"}
    assert asset.metadata["lora_adapters"] == [{"source": str(own), "scale": 0.75}]


def test_names_are_found_in_lora_dir_and_each_adapter_gets_its_own_tag(manager, fake_sd_cli, lora_dir):
    manager.generate_image(
        "a cat",
        lora_adapters=["ink:0.5", {"source": "styles", "weight_name": "wash.safetensors", "scale": -1}],
        **SMALL,
    )
    run = fake_sd_cli.runs()[-1]
    prompt = flag_value(run["argv"], "-p")
    assert prompt == "a cat<lora:ink.safetensors:0.5><lora:styles-wash.safetensors:-1.0>"
    assert run["loras"] == {
        "ink.safetensors": str((lora_dir / "ink.safetensors").resolve()),
        "styles-wash.safetensors": str((lora_dir / "styles" / "wash.safetensors").resolve()),
    }


def test_adapter_name_names_the_link_and_a_folder_with_one_file_needs_no_weight_name(manager, fake_sd_cli, lora_dir):
    manager.generate_image(
        "a cat", lora_adapters=[LoRAAdapterSpec("styles", adapter_name="mine"), LoRAAdapterSpec("ink")], **SMALL
    )
    prompt = flag_value(fake_sd_cli.last_argv(), "-p")
    assert prompt == "a cat<lora:mine.safetensors:1.0><lora:ink.safetensors:1.0>"


def test_a_call_without_adapters_passes_no_folder_and_no_tag(manager, fake_sd_cli):
    manager.generate_image("a cat", **SMALL)
    argv = fake_sd_cli.last_argv()
    assert "--lora-model-dir" not in argv and flag_value(argv, "-p") == "a cat"


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_prompt_with_its_own_lora_tag_is_refused_before_sd_cli_runs(manager, fake_sd_cli, field):
    text = {"prompt": "a cat", "negative_prompt": None, field: "a cat <lora:../../secret:1>"}
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image(text.pop("prompt"), **text, **SMALL)
    assert info.value.field == field and "lora_adapters" in str(info.value)
    assert fake_sd_cli.runs() == []


def test_a_missing_adapter_is_a_typed_error_naming_the_paths_before_sd_cli_runs(manager, fake_sd_cli, lora_dir):
    with pytest.raises(AdapterNotAvailableError) as info:
        manager.generate_image("a cat", lora_adapters=["ink", "nowhere:0.5"], **SMALL)
    assert info.value.adapter == "nowhere"
    message = str(info.value)
    assert (
        "lora_adapters[1].source" in message and str(lora_dir / "nowhere") in message and "never downloads" in message
    )
    assert fake_sd_cli.runs() == []


def test_files_sd_cpp_cannot_read_and_ambiguous_folders_are_refused(manager, fake_sd_cli, lora_dir):
    with pytest.raises(AdapterNotAvailableError, match="not a LoRA file"):
        manager.generate_image("a cat", lora_adapters=[str(lora_dir / "notes.txt")], **SMALL)
    adapter_file(lora_dir / "styles" / "second.safetensors")
    with pytest.raises(AdapterNotAvailableError, match="holds 2 adapter files .*weight_name="):
        manager.generate_image("a cat", lora_adapters=["styles"], **SMALL)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", lora_adapters=[{"source": "ink", "weight_name": "x.safetensors"}], **SMALL)
    assert info.value.field == "lora_adapters[0].weight_name"
    assert fake_sd_cli.runs() == []


def test_extra_cannot_point_sd_cli_at_another_adapter_folder(manager, fake_sd_cli):
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", extra={"lora_model_dir": "/"}, **SMALL)
    assert info.value.field == "extra['lora_model_dir']"


def test_image_to_image_carries_adapters_too(manager, fake_sd_cli):
    manager.edit_image("a cat", make_png(64, 64), lora_adapters=["ink:2"], steps=2, seed=1)
    assert flag_value(fake_sd_cli.last_argv(), "-p") == "a cat<lora:ink.safetensors:2.0>"


def test_capabilities_offer_lora_for_image_tasks_and_the_catalog_lists_lora_dir(manager, lora_dir, model_file):
    backend = manager.backend
    assert backend.get_capabilities().supports_lora is True
    adapters = backend.list_provider_adapters()
    assert [(a.id, a.path, a.size_bytes) for a in adapters] == [
        ("ink", str(lora_dir / "ink.safetensors"), (lora_dir / "ink.safetensors").stat().st_size)
    ]
    assert manager.list_provider_adapters() == adapters
    upscaler_only = StableDiffusionCppVisionBackend(upscale_model=str(model_file))
    assert upscaler_only.get_capabilities().supports_lora is False
    assert StableDiffusionCppVisionBackend(model=str(model_file)).list_provider_adapters() == []


def test_lora_dir_is_a_declared_setting_read_from_the_environment(tmp_path):
    env = {"ABSTRACTVISION_SDCPP_MODEL": "/m.safetensors", "ABSTRACTVISION_SDCPP_LORA_DIR": str(tmp_path)}
    assert resolve(StableDiffusionCppBackendConfig, env).build().lora_dir == str(tmp_path)
    assert resolve(StableDiffusionCppBackendConfig, env, lora_dir="/x").build().lora_dir == "/x"
