"""LoRA adapters on the Diffusers backend, against the tiny random-weight pipeline and random
adapters made for its UNet by the tests (PEFT layers with random up-projections, saved in the
Diffusers LoRA format). The reference is always raw Diffusers: the same pipeline class loaded from
the same files, ``load_lora_weights`` and ``set_adapters`` with the same scales, the same seed."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import abstractvision
from abstractvision import LoRAAdapterSpec, VisionManager
from abstractvision.backends.huggingface_diffusers import (
    HuggingFaceDiffusersBackendConfig,
    HuggingFaceDiffusersVisionBackend,
)
from abstractvision.errors import AdapterNotAvailableError, InvalidRequestError, OptionalDependencyMissingError
from fixtures.images import make_png

numpy = pytest.importorskip("numpy", reason='needs pip install "abstractvision[diffusers]"')

CALL = {"seed": 7, "width": 64, "height": 64, "steps": 2}
PROMPT = "a red cat"


def pixels(png: bytes) -> numpy.ndarray:
    from PIL import Image

    return numpy.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def raw_pixels(folder, adapters=(), **call) -> numpy.ndarray:
    """The request made straight through Diffusers: ``adapters`` are ``(file, scale)`` pairs."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    with warnings.catch_warnings():  # PEFT warns that a second adapter makes "multiple adapters": intended
        warnings.simplefilter("ignore", UserWarning)
        for index, (file, _) in enumerate(adapters):
            pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=f"raw{index}")
    if adapters:
        pipe.set_adapters([f"raw{i}" for i in range(len(adapters))], adapter_weights=[s for _, s in adapters])
    seed = call.pop("seed", CALL["seed"])
    image = pipe(
        PROMPT,
        width=CALL["width"],
        height=CALL["height"],
        num_inference_steps=CALL["steps"],
        generator=torch.Generator("cpu").manual_seed(seed),
        **call,
    ).images[0]
    return numpy.asarray(image.convert("RGB"))


def backend_for(pipeline, **config) -> HuggingFaceDiffusersVisionBackend:
    return HuggingFaceDiffusersVisionBackend(
        HuggingFaceDiffusersBackendConfig(model_id=str(pipeline), device="cpu", **config)
    )


@pytest.fixture
def manager(tiny_diffusers_pipeline, tiny_loras):
    """A manager on the tiny pipeline whose lora_dir holds adapters ``a`` and ``b``."""
    with VisionManager(backend=backend_for(tiny_diffusers_pipeline, lora_dir=str(tiny_loras))) as vm:
        yield vm


def generate(vm: VisionManager, *adapters, **call) -> numpy.ndarray:
    return pixels(vm.generate_image(PROMPT, lora_adapters=list(adapters), **{**CALL, **call}).data)


def loaded_adapters(vm: VisionManager) -> dict[str, list[str]]:
    """What the running pipeline holds, asked of Diffusers itself."""
    return vm.backend._pipelines["text_to_image"].get_list_adapters()


# ---- no pipeline needed ----------------------------------------------------------------------------------
def test_lora_is_offered_with_a_model_and_not_by_an_upscaler_alone():
    with_model = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(model_id="org/model"))
    assert with_model.get_capabilities().supports_lora
    upscaler_only = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(upscaler="org/upscaler"))
    assert not upscaler_only.get_capabilities().supports_lora


def test_lora_dir_is_a_declared_setting_read_from_the_environment(tmp_path):
    from abstractvision.backends import create_backend

    backend = create_backend("diffusers", {"ABSTRACTVISION_DIFFUSERS_LORA_DIR": str(tmp_path)})
    assert backend.config.lora_dir == str(tmp_path)


def cache_lora_repo(root, repo_id: str, files: dict[str, bytes]) -> None:
    """A repo laid out the way huggingface_hub writes it: blobs, a snapshot of links, refs/main."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / "c0ffee"
    for index, (name, data) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{index}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c0ffee")


@pytest.fixture
def hub_cache(tmp_path):
    """A hub cache with two LoRA repos, a pipeline and a plain model (neither of the last two is an adapter)."""
    root = tmp_path / "hub"
    cache_lora_repo(root, "someone/ink-lora", {"pytorch_lora_weights.safetensors": b"x" * 10})
    cache_lora_repo(root, "someone/styles", {"v1/paper_lora.safetensors": b"y" * 20, "README.md": b"#"})
    cache_lora_repo(root, "someone/pipeline", {"model_index.json": b"{}", "unet/lora_like.safetensors": b"z"})
    cache_lora_repo(root, "someone/encoder", {"model.safetensors": b"w"})
    return root


def test_list_provider_adapters_lists_lora_dir_files_and_cached_lora_repos_without_network(
    tmp_path, hub_cache, block_network
):
    lora_dir = tmp_path / "loras"
    lora_dir.mkdir()
    (lora_dir / "ink.safetensors").write_bytes(b"a" * 30)
    (lora_dir / "notes.txt").write_text("not an adapter")
    (lora_dir / "old.ckpt").write_bytes(b"pickled")
    backend = HuggingFaceDiffusersVisionBackend(
        HuggingFaceDiffusersBackendConfig(lora_dir=str(lora_dir), cache_dir=str(hub_cache))
    )
    found = VisionManager(backend=backend).list_provider_adapters()
    assert [(a.id, a.weight_name, a.size_bytes) for a in found] == [
        ("ink", None, 30),
        ("someone/ink-lora", None, 10),
        ("someone/styles", "v1/paper_lora.safetensors", 20),
    ]
    assert found[0].path == str(lora_dir / "ink.safetensors")
    assert block_network == []


def test_list_provider_adapters_reads_the_hub_cache_that_hf_hub_cache_names(hub_cache, tmp_path):
    """A fresh process, so huggingface_hub reads HF_HUB_CACHE as it does for users."""
    script = textwrap.dedent(
        """
        from abstractvision.backends.huggingface_diffusers import (
            HuggingFaceDiffusersBackendConfig, HuggingFaceDiffusersVisionBackend)
        backend = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig())
        print(sorted((a.id, a.weight_name) for a in backend.list_provider_adapters()))
        """
    )
    source = str(Path(abstractvision.__file__).parents[1])  # these sources, not whatever is installed
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[('someone/ink-lora', None), ('someone/styles', 'v1/paper_lora.safetensors')]"


def test_without_peft_lora_names_the_extra(tiny_diffusers_pipeline, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # what an install without peft looks like to `import peft`
    backend = backend_for(tiny_diffusers_pipeline)
    with pytest.raises(OptionalDependencyMissingError, match=r"abstractvision\[diffusers\]") as info:
        VisionManager(backend=backend).generate_image(PROMPT, lora_adapters=["ink"], **CALL)
    assert "peft" in str(info.value) and not backend.loaded


# ---- missing adapters fail before anything runs -----------------------------------------------------------
@pytest.mark.parametrize(
    "source,fix",
    [
        ("ink", "ABSTRACTVISION_DIFFUSERS_LORA_DIR"),  # a name, and no lora_dir
        ("someone/not-cached-lora", "hf download someone/not-cached-lora"),  # a repo id, downloads off
        ("/nowhere/ink.safetensors", "no such file or folder"),  # a path
    ],
)
def test_a_missing_adapter_is_a_typed_error_before_the_run(tiny_diffusers_pipeline, tmp_path, source, fix):
    pytest.importorskip("peft")
    events = []
    backend = backend_for(tiny_diffusers_pipeline, cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(AdapterNotAvailableError) as info:
        VisionManager(backend=backend).generate_image(PROMPT, lora_adapters=[source], on_progress=events.append, **CALL)
    assert info.value.adapter == source and repr(source) in str(info.value) and fix in str(info.value)
    assert not [e for e in events if e.phase == "step"] and not backend.loaded


def test_a_download_that_fails_is_a_typed_error_before_the_run(tiny_diffusers_pipeline, tmp_path, block_network):
    """allow_download lets an uncached repo be fetched; when the hub cannot be reached the call fails
    typed, naming the repo, before anything loads (no network here: the fetch is refused)."""
    pytest.importorskip("peft")
    events = []
    backend = backend_for(tiny_diffusers_pipeline, cache_dir=str(tmp_path / "empty-cache"), allow_download=True)
    source = "someone/not-cached-lora"
    with pytest.raises(AdapterNotAvailableError, match="could not be downloaded from the Hugging Face hub") as info:
        VisionManager(backend=backend).generate_image(PROMPT, lora_adapters=[source], on_progress=events.append, **CALL)
    assert info.value.adapter == source
    assert not [e for e in events if e.phase == "step"] and not backend.loaded


def test_a_name_missing_from_lora_dir_names_the_folder(tiny_diffusers_pipeline, tiny_loras):
    pytest.importorskip("peft")
    backend = backend_for(tiny_diffusers_pipeline, lora_dir=str(tiny_loras))
    with pytest.raises(AdapterNotAvailableError, match="in lora_dir " + str(tiny_loras)):
        VisionManager(backend=backend).generate_image(PROMPT, lora_adapters=["c:0.5"], **CALL)
    assert not backend.loaded


# ---- the pipeline runs --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_lora_call_equals_raw_diffusers_pixel_for_pixel(manager, tiny_diffusers_pipeline, tiny_loras):
    baseline = generate(manager)
    styled = generate(manager, "a:0.7")
    assert not numpy.array_equal(styled, baseline)  # the adapter does something
    assert numpy.array_equal(styled, raw_pixels(tiny_diffusers_pipeline, [(tiny_loras / "a.safetensors", 0.7)]))


@pytest.mark.slow
def test_scale_zero_equals_the_baseline(manager, tiny_diffusers_pipeline):
    assert numpy.array_equal(generate(manager, LoRAAdapterSpec("a", scale=0.0)), raw_pixels(tiny_diffusers_pipeline))


@pytest.mark.slow
def test_two_adapters_combine_like_raw_diffusers(manager, tiny_diffusers_pipeline, tiny_loras):
    both = generate(manager, "a:0.8", {"source": "b", "scale": -0.5})
    expected = raw_pixels(
        tiny_diffusers_pipeline, [(tiny_loras / "a.safetensors", 0.8), (tiny_loras / "b.safetensors", -0.5)]
    )
    assert numpy.array_equal(both, expected)
    assert not numpy.array_equal(both, generate(manager, "a:0.8"))


@pytest.mark.slow
def test_adapters_do_not_stack_across_calls(manager, tiny_diffusers_pipeline, tiny_loras):
    baseline = raw_pixels(tiny_diffusers_pipeline)
    b_alone = raw_pixels(tiny_diffusers_pipeline, [(tiny_loras / "b.safetensors", 1.0)])
    generate(manager, "a")
    assert numpy.array_equal(generate(manager, "b"), b_alone)  # A then B: B alone
    assert numpy.array_equal(generate(manager), baseline)  # B then none: the baseline
    generate(manager, "a", "b")
    assert numpy.array_equal(generate(manager), baseline)  # A+B then none
    assert numpy.array_equal(generate(manager, "b"), b_alone)  # none then B: B alone again


@pytest.mark.slow
def test_an_adapter_is_loaded_once_and_kept(manager):
    generate(manager, "a")
    unet = manager.backend._pipelines["text_to_image"].unet
    weight = unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q.lora_A["a"].weight
    generate(manager)
    generate(manager, "a:0.5")
    manager.edit_image(PROMPT, make_png(64, 64), lora_adapters=["a"], seed=1, steps=2)
    assert loaded_adapters(manager) == {"unet": ["a"]}  # one copy, shared by the edit pipeline
    assert unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q.lora_A["a"].weight is weight
    manager.backend.unload()
    generate(manager, "b")
    assert loaded_adapters(manager) == {"unet": ["b"], "text_encoder": ["b"]}  # unload dropped "a" with the weights


@pytest.mark.slow
def test_edits_take_adapters_and_leave_no_trace(manager):
    image, mask = make_png(64, 64), make_png(64, 64, mode="L")

    def edit(*adapters, **extra):
        return pixels(manager.edit_image(PROMPT, image, lora_adapters=list(adapters), seed=3, steps=2, **extra).data)

    plain, plain_inpaint = edit(strength=0.9), edit(mask=mask)
    assert not numpy.array_equal(edit("a", strength=0.9), plain)
    assert not numpy.array_equal(edit("b", mask=mask), plain_inpaint)
    generate(manager, "a")
    assert numpy.array_equal(edit(strength=0.9), plain)  # a generation's adapter does not reach the edit
    assert numpy.array_equal(edit(mask=mask), plain_inpaint)


@pytest.mark.slow
def test_folder_file_and_cached_repo_sources_load_without_network(
    tiny_diffusers_pipeline, tiny_loras, tmp_path, block_network
):
    folder = tmp_path / "diffusers-format"  # the layout save_lora_weights writes: weight_name optional
    folder.mkdir()
    shutil.copy(tiny_loras / "a.safetensors", folder / "pytorch_lora_weights.safetensors")
    hub = tmp_path / "hub"
    weights = (tiny_loras / "a.safetensors").read_bytes()
    cache_lora_repo(hub, "someone/a-lora", {"pytorch_lora_weights.safetensors": weights})
    expected = raw_pixels(tiny_diffusers_pipeline, [(tiny_loras / "a.safetensors", 0.6)])
    for source in (str(folder), str(tiny_loras / "a.safetensors"), "someone/a-lora"):
        with VisionManager(backend=backend_for(tiny_diffusers_pipeline, cache_dir=str(hub))) as vm:
            assert numpy.array_equal(generate(vm, f"{source}:0.6"), expected), source
    assert block_network == []


@pytest.mark.slow
def test_two_sources_with_one_name_get_their_own_adapters(manager, tiny_diffusers_pipeline, tiny_loras, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tiny_loras / "b.safetensors", other / "a.safetensors")  # also named "a", B's weights
    generate(manager, "a")
    assert numpy.array_equal(
        generate(manager, str(other / "a.safetensors")),
        raw_pixels(tiny_diffusers_pipeline, [(tiny_loras / "b.safetensors", 1.0)]),
    )
    assert loaded_adapters(manager) == {"unet": ["a", "a-2"], "text_encoder": ["a-2"]}


@pytest.mark.slow
def test_a_file_replaced_on_disk_is_loaded_again(tiny_diffusers_pipeline, tiny_loras, tmp_path):
    lora_dir = tmp_path / "loras"
    lora_dir.mkdir()
    shutil.copy(tiny_loras / "a.safetensors", lora_dir / "style.safetensors")
    with VisionManager(backend=backend_for(tiny_diffusers_pipeline, lora_dir=str(lora_dir))) as vm:
        generate(vm, "style")
        shutil.copy(tiny_loras / "b.safetensors", lora_dir / "style.safetensors")
        os.utime(lora_dir / "style.safetensors", ns=(1, 1))  # a different mtime even on a coarse clock
        expected = raw_pixels(tiny_diffusers_pipeline, [(tiny_loras / "b.safetensors", 1.0)])
        assert numpy.array_equal(generate(vm, "style"), expected)
        assert loaded_adapters(vm) == {"unet": ["style"], "text_encoder": ["style"]}  # B's layers, not A's


@pytest.mark.slow
def test_a_file_that_is_not_a_usable_lora_is_a_typed_error(manager, tiny_diffusers_pipeline, tiny_loras, tmp_path):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file")
    save_file({"weight": torch.zeros(3)}, tmp_path / "full-model.safetensors")
    save_file(
        {"unet.nowhere.lora_A.weight": torch.zeros(4, 8), "unet.nowhere.lora_B.weight": torch.zeros(8, 4)},
        tmp_path / "other-model.safetensors",
    )
    (tmp_path / "pickled.bin").write_bytes(b"\x80\x04")
    for name in ("garbage.safetensors", "full-model.safetensors", "other-model.safetensors", "pickled.bin"):
        source = str(tmp_path / name)
        with pytest.raises(InvalidRequestError) as info:
            generate(manager, "a", source)
        assert name in str(info.value) and info.value.field == "lora_adapters[1]", str(info.value)
    assert loaded_adapters(manager) == {"unet": ["a"]}  # nothing half-loaded stays behind
    assert numpy.array_equal(generate(manager), raw_pixels(tiny_diffusers_pipeline))


@pytest.mark.slow
def test_a_folder_with_several_adapters_needs_a_weight_name(manager, tiny_diffusers_pipeline, tiny_loras):
    with pytest.raises(InvalidRequestError, match="a.safetensors, b.safetensors.*weight_name") as info:
        generate(manager, str(tiny_loras))
    assert info.value.field == "lora_adapters[0].weight_name"
    picked = generate(manager, {"source": str(tiny_loras), "weight_name": "b.safetensors"})
    assert numpy.array_equal(picked, raw_pixels(tiny_diffusers_pipeline, [(tiny_loras / "b.safetensors", 1.0)]))


@pytest.mark.slow
def test_one_file_named_twice_in_a_call_is_refused(manager, tiny_loras):
    with pytest.raises(InvalidRequestError, match=r"same file as lora_adapters\[0\]") as info:
        generate(manager, "a", {"source": str(tiny_loras / "a.safetensors"), "adapter_name": "again"})
    assert info.value.field == "lora_adapters[1]"


@pytest.mark.slow
def test_a_float32_retry_reloads_the_call_adapters(tiny_diffusers_pipeline, tiny_loras, tmp_path):
    from fixtures.tiny_diffusers import overflowing_copy

    folder = overflowing_copy(tiny_diffusers_pipeline, tmp_path / "overflow")
    backend = backend_for(folder, torch_dtype="float16", lora_dir=str(tiny_loras))
    with VisionManager(backend=backend) as vm:
        with pytest.warns(RuntimeWarning, match="retrying in float32"):
            asset = vm.generate_image(PROMPT, lora_adapters=["a:0.7"], **CALL)
        assert asset.metadata["fp32_retry"] is True
        assert numpy.array_equal(pixels(asset.data), raw_pixels(folder, [(tiny_loras / "a.safetensors", 0.7)]))
        assert numpy.array_equal(generate(vm), raw_pixels(folder))  # and the float32 pipeline is left clean
