"""Content checks for the packaged capability registry (``assets/vision_model_capabilities.json``).

The loader already enforces the schema (unknown keys, defaults inside min/max and among choices);
these tests pin the *facts*: which well-known ids are present, what they can do, and the provider
rules that are easy to get wrong (GPT image models have no ``response_format``, dall-e-3 is n=1).
"""

from __future__ import annotations

import importlib.util

import pytest

from abstractvision.model_capabilities import VisionModelCapabilitiesRegistry

GPT_IMAGE_MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5")

#: model id -> tasks it must support
EXPECTED_TASKS: dict[str, set[str]] = {
    "runwayml/stable-diffusion-v1-5": {"text_to_image", "image_to_image"},
    "stabilityai/stable-diffusion-2-1": {"text_to_image"},
    "stabilityai/stable-diffusion-xl-base-1.0": {"text_to_image"},
    "stabilityai/sdxl-turbo": {"text_to_image"},
    "stabilityai/stable-diffusion-3-medium-diffusers": {"text_to_image"},
    "stabilityai/stable-diffusion-3.5-large": {"text_to_image"},
    "stabilityai/stable-diffusion-3.5-medium": {"text_to_image"},
    "stabilityai/stable-diffusion-3.5-large-turbo": {"text_to_image"},
    "black-forest-labs/FLUX.1-dev": {"text_to_image"},
    "black-forest-labs/FLUX.1-schnell": {"text_to_image"},
    "black-forest-labs/FLUX.1-Kontext-dev": {"image_to_image"},
    "black-forest-labs/FLUX.2-dev": {"text_to_image", "image_to_image"},
    "black-forest-labs/FLUX.2-klein-4B": {"text_to_image", "image_to_image"},
    "Qwen/Qwen-Image": {"text_to_image"},
    "Qwen/Qwen-Image-Edit": {"image_to_image"},
    "Qwen/Qwen-Image-Edit-2509": {"image_to_image"},
    "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS": {"text_to_image"},
    "kandinsky-community/kandinsky-2-2-decoder": {"text_to_image"},
    "kandinsky-community/kandinsky-3": {"text_to_image"},
    "gpt-image-1": {"text_to_image", "image_to_image"},
    "gpt-image-1-mini": {"text_to_image", "image_to_image"},
    "gpt-image-1.5": {"text_to_image", "image_to_image"},
    "dall-e-3": {"text_to_image"},
    "dall-e-2": {"text_to_image", "image_to_image"},
    "sora-2": {"text_to_video", "image_to_video"},
    "sora-2-pro": {"text_to_video", "image_to_video"},
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": {"text_to_video"},
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": {"image_to_video"},
    "Lightricks/LTX-Video": {"text_to_video", "image_to_video"},
    "THUDM/CogVideoX-2b": {"text_to_video"},
    "sudo-ai/zero123plus-v1.2": {"multi_view_image"},
}

#: tasks a model must NOT claim (documented gaps)
UNSUPPORTED: dict[str, set[str]] = {
    "dall-e-3": {"image_to_image", "text_to_video", "image_to_video", "multi_view_image"},
    "black-forest-labs/FLUX.1-Kontext-dev": {"text_to_image"},
    "sora-2": {"text_to_image", "image_to_image"},
}


def _packaged() -> VisionModelCapabilitiesRegistry:
    """The packaged registry: ``VisionModelCapabilitiesRegistry()`` with the path override unset."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ABSTRACTVISION_MODEL_CAPABILITIES_PATH", raising=False)
        return VisionModelCapabilitiesRegistry()


@pytest.fixture(scope="module")
def registry() -> VisionModelCapabilitiesRegistry:
    return _packaged()


def _all_specs(registry):
    for model_id in registry.list_models():
        caps = registry.get(model_id)
        for task, spec in caps.tasks.items():
            yield model_id, task, spec


def test_default_constructor_loads_the_packaged_file():
    reg = _packaged()
    assert reg.source == "vision_model_capabilities.json"
    assert set(EXPECTED_TASKS) <= set(reg.list_models())


def test_every_task_has_a_model(registry):
    for task in registry.list_tasks():
        if task == "multi_view_image":
            continue  # allowed to be empty; checked below for the model we do ship
        assert registry.models_for_task(task), f"no model supports {task}"
    assert registry.models_for_task("multi_view_image") == ["sudo-ai/zero123plus-v1.2"]


@pytest.mark.parametrize("model_id", sorted(EXPECTED_TASKS))
def test_key_models_support_their_tasks(registry, model_id):
    for task in EXPECTED_TASKS[model_id]:
        assert registry.supports(model_id, task), f"{model_id} should support {task}"
    for task in UNSUPPORTED.get(model_id, ()):
        assert not registry.supports(model_id, task), f"{model_id} should not claim {task}"


def test_sd15_alias_and_seeded_values_are_kept(registry):
    assert registry.resolve("stable-diffusion-v1-5/stable-diffusion-v1-5") == "runwayml/stable-diffusion-v1-5"
    t2i = registry.require_support("runwayml/stable-diffusion-v1-5", "text_to_image").params
    for side in ("width", "height"):
        p = t2i[side]
        assert (p.default, p.min, p.max, p.multiple_of) == (512, 64, 1024, 8)
    assert (t2i["steps"].default, t2i["steps"].min, t2i["steps"].max) == (30, 1, 150)
    assert (t2i["guidance_scale"].default, t2i["guidance_scale"].min, t2i["guidance_scale"].max) == (7.5, 0, 30)
    i2i = registry.require_support("runwayml/stable-diffusion-v1-5", "image_to_image").params
    assert i2i["strength"].default == 0.75


def test_sizes_with_multiple_of_have_aligned_defaults(registry):
    checked = 0
    for model_id, task, spec in _all_specs(registry):
        for name in ("width", "height"):
            p = spec.params.get(name)
            if p is None or p.multiple_of is None:
                continue
            checked += 1
            assert p.default is not None, f"{model_id} {task} {name} has multiple_of but no default"
            assert p.default % p.multiple_of == 0, f"{model_id} {task} {name}={p.default} not /{p.multiple_of}"
            for bound in (p.min, p.max):
                if bound is not None:
                    assert bound % p.multiple_of == 0, f"{model_id} {task} {name} bound {bound} not /{p.multiple_of}"
    assert checked > 0


def test_native_resolutions(registry):
    expected = {
        "stabilityai/stable-diffusion-2-1": 768,
        "stabilityai/stable-diffusion-xl-base-1.0": 1024,
        "stabilityai/sdxl-turbo": 512,
        "stabilityai/stable-diffusion-3-medium-diffusers": 1024,
        "stabilityai/stable-diffusion-3.5-large": 1024,
        "black-forest-labs/FLUX.1-dev": 1024,
        "black-forest-labs/FLUX.1-schnell": 1024,
    }
    for model_id, side in expected.items():
        params = registry.require_support(model_id, "text_to_image").params
        assert params["width"].default == side and params["height"].default == side, model_id
    for model_id in ("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell"):
        assert registry.require_support(model_id, "text_to_image").params["width"].multiple_of == 16


@pytest.mark.parametrize("model_id", ["black-forest-labs/FLUX.1-schnell", "stabilityai/sdxl-turbo"])
def test_few_step_models_are_limited_to_four_steps_without_guidance(registry, model_id):
    params = registry.require_support(model_id, "text_to_image").params
    assert params["steps"].min == 1 and params["steps"].max == 4
    assert params["guidance_scale"].default == 0 and params["guidance_scale"].max == 0


@pytest.mark.parametrize("model_id", GPT_IMAGE_MODELS)
def test_gpt_image_models(registry, model_id):
    caps = registry.get(model_id)
    assert caps.provider == "openai"
    for task in ("text_to_image", "image_to_image"):
        params = caps.tasks[task].params
        assert "response_format" not in params, "GPT image models always return base64"
        assert params["size"].choices == ("auto", "1024x1024", "1536x1024", "1024x1536")
        assert params["quality"].choices == ("auto", "low", "medium", "high")
        assert params["background"].choices == ("auto", "transparent", "opaque")
        assert params["output_format"].choices == ("png", "jpeg", "webp")
        assert (params["output_compression"].min, params["output_compression"].max) == (0, 100)
        assert (params["n"].min, params["n"].max) == (1, 10)
    assert ("input_fidelity" in caps.tasks["image_to_image"].params) == (model_id != "gpt-image-1-mini")


def test_dall_e_3(registry):
    params = registry.require_support("dall-e-3", "text_to_image").params
    assert params["size"].choices == ("1024x1024", "1792x1024", "1024x1792")
    assert set(params["quality"].choices) == {"standard", "hd"}
    assert set(params["style"].choices) == {"vivid", "natural"}
    if "n" in params:
        assert params["n"].max == 1


def test_dall_e_2(registry):
    for task in ("text_to_image", "image_to_image"):
        params = registry.require_support("dall-e-2", task).params
        assert params["size"].choices == ("256x256", "512x512", "1024x1024")


def test_sora(registry):
    for model_id, sizes in (
        ("sora-2", {"720x1280", "1280x720"}),
        ("sora-2-pro", {"720x1280", "1280x720", "1024x1792", "1792x1024"}),
    ):
        for task in ("text_to_video", "image_to_video"):
            params = registry.require_support(model_id, task).params
            assert set(params["size"].choices) == sizes
            assert params["seconds"].choices == ("4", "8", "12")
            assert params["seconds"].default in params["seconds"].choices


def test_open_video_models_declare_frame_params(registry):
    for model_id in registry.list_models():
        caps = registry.get(model_id)
        if caps.provider != "huggingface":
            continue
        for task in ("text_to_video", "image_to_video"):
            if task in caps.tasks:
                params = caps.tasks[task].params
                for name in ("width", "height", "num_frames", "fps", "steps", "guidance_scale"):
                    assert name in params, f"{model_id} {task} lacks {name}"


def test_param_names_are_request_or_provider_fields(registry):
    allowed = {
        "width", "height", "steps", "guidance_scale", "seed", "num_frames", "fps", "strength",
        "size", "quality", "style", "background", "output_format", "output_compression", "n", "seconds",
        "moderation", "input_fidelity",
    }  # fmt: skip
    for model_id, task, spec in _all_specs(registry):
        unknown = set(spec.params) - allowed
        assert not unknown, f"{model_id} {task} has unexpected params {sorted(unknown)}"
        assert "negative_prompt" not in spec.params


def test_providers_and_families(registry):
    providers = {registry.get(m).provider for m in registry.list_models()}
    assert providers <= {"huggingface", "openai", "sdcpp"}
    for model_id in registry.list_models():
        assert registry.get(model_id).family, f"{model_id} has no family"


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="diffusers is not installed")
def test_required_diffusers_pipelines_exist():
    import diffusers

    registry = _packaged()
    missing = []
    for model_id, task, spec in _all_specs(registry):
        for req in spec.requires:
            if req.startswith("diffusers:") and not hasattr(diffusers, req.split(":", 1)[1]):
                missing.append(f"{model_id} {task}: {req}")
    assert not missing, f"pipelines not in diffusers {diffusers.__version__}: {missing}"
