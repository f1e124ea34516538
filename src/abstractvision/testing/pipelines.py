"""Build small random-weight Stable Diffusion pipelines offline, for tests, demos and benchmarks.

Why: a real model is gigabytes and needs the hub. A random-weight pipeline with the real
Stable Diffusion architecture (UNet, VAE, CLIP text encoder, tokenizer, scheduler) exercises the
same Diffusers code paths (loading, ``from_pipe``, callbacks, seeds) in seconds and with no network.
Its images are noise: it proves an installation works, not that a model is good.

``build_tiny_pipeline(folder)`` writes a ~0.7 MB pipeline folder; ``build_random_pipeline(folder,
scale=...)`` a wider one whose calls take about a second (benchmarks); ``build_tiny_upscale_pipeline``
a ~0.8 MB ``StableDiffusionUpscalePipeline`` (the x4 upscaler's architecture: a UNet taking the
latents and the low-resolution image, 7 channels, and a 4x VAE); ``build_random_lora(folder, out)``
a random LoRA adapter for such a pipeline. All need the ``diffusers`` extra (and peft for the
adapter) and import it only when called.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Whole words added to the byte-level vocabulary, so prompts tokenize into more than bytes.
_WORDS = ("a", "cat", "dog", "red", "blue", "square", "photo", "of", "the", "sunset", "over", "sea")

#: The x4 upscaler's highest noise level (its UNet embeds each level as a class).
_MAX_NOISE_LEVEL = 350

#: Marker file written last: a folder without it is an interrupted build and is rebuilt.
_COMPLETE_MARKER = "abstractvision_random_pipeline.json"


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes used by CLIP/GPT-2 byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def write_clip_tokenizer_files(folder: Path) -> None:
    """Write a CLIP-format ``vocab.json`` and ``merges.txt`` (loadable with no hub access)."""
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + [w + "</w>" for w in _WORDS]
    merges: list[str] = []
    for word in _WORDS:  # merge each word left to right into one token
        if len(word) < 2:
            continue
        prefix = word[0]
        for index, char in enumerate(word[1:], start=1):
            right = char + "</w>" if index == len(word) - 1 else char
            merges.append(f"{prefix} {right}")
            prefix += right
            if prefix not in tokens:
                tokens.append(prefix)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def _text_stack() -> tuple:
    """A CLIP tokenizer written without the hub, and a 2-layer random text encoder sized to it."""
    import tempfile

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with tempfile.TemporaryDirectory() as scratch:
        write_clip_tokenizer_files(Path(scratch))
        tokenizer = CLIPTokenizer.from_pretrained(scratch, model_max_length=77)
    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
    )
    return tokenizer, CLIPTextModel(config)


def _build_components(width: int, seed: int) -> dict:
    """Random-weight SD components; ``width`` is the UNet's first block width (8 = tiny)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    groups = 4 if width <= 16 else 8
    unet = UNet2DConditionModel(
        block_out_channels=(width, width * 2),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=groups,
    )
    vae = AutoencoderKL(
        block_out_channels=[width, width * 2],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=groups,
    )
    tokenizer, text_encoder = _text_stack()
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def _upscale_components(seed: int) -> dict:
    """Random-weight components of the x4 upscaler's architecture, at the tiny sizes."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=7,  # the 4 latent channels plus the noised low-resolution RGB image
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=4,
        num_class_embeds=_MAX_NOISE_LEVEL + 1,  # the noise level is the class label
    )
    vae = AutoencoderKL(  # three blocks: the VAE decodes 4x larger than its latents
        block_out_channels=[8, 8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4,
        norm_num_groups=4,
        scaling_factor=0.08333,  # the x4 upscaler's; Diffusers warns about any other
    )
    tokenizer, text_encoder = _text_stack()
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "low_res_scheduler": DDPMScheduler(),
        "scheduler": DDIMScheduler(prediction_type="v_prediction"),
        "safety_checker": None,
        "feature_extractor": None,
        "watermarker": None,
        "max_noise_level": _MAX_NOISE_LEVEL,
    }


def _build_once(folder: str | Path, wanted: dict, make) -> Path:
    """Save ``make()``'s pipeline to ``folder`` unless a complete build of ``wanted`` is there already."""
    folder = Path(folder).expanduser()
    marker = folder / _COMPLETE_MARKER
    if marker.is_file() and json.loads(marker.read_text("utf-8")) == wanted:
        return folder
    from ..backends._diffusers_loading import quiet_loading

    with quiet_loading():  # no tqdm bars or torchvision notices from Transformers while writing
        make().save_pretrained(folder, safe_serialization=True)
    # transformers 5.x saves only tokenizer.json; 4.x readers need the vocab and merges too.
    write_clip_tokenizer_files(folder / "tokenizer")
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return folder


def build_random_pipeline(folder: str | Path, *, scale: int = 1, seed: int = 0) -> Path:
    """Write a random-weight Stable Diffusion pipeline folder and return its path.

    ``scale=1`` is the tiny pipeline (~0.7 MB, a 64x64 two-step call in ~0.05 s on a CPU); larger
    scales widen the UNet and VAE (``scale=6``: a 128x128 two-step call takes on the order of a second on two
    CPU cores). Same ``scale`` and ``seed`` give the same weights. An existing complete folder is
    reused, so callers can build into a cache once.
    """

    def make():
        from diffusers import StableDiffusionPipeline

        return StableDiffusionPipeline(**_build_components(8 * scale, seed), requires_safety_checker=False)

    return _build_once(folder, {"scale": scale, "seed": seed}, make)


def build_tiny_upscale_pipeline(folder: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random-weight ``StableDiffusionUpscalePipeline`` folder (x4) and return its path.

    It loads as ``upscaler=`` of the diffusers backend; a 16x16 input upscales to 64x64 in a few
    tenths of a second per step on a CPU. Its pictures are noise. An existing complete folder is reused.
    """

    def make():
        from diffusers import StableDiffusionUpscalePipeline

        return StableDiffusionUpscalePipeline(**_upscale_components(seed))

    return _build_once(folder, {"upscaler": "x4", "seed": seed}, make)


def build_random_lora(
    pipeline: str | Path,
    destination: str | Path,
    *,
    seed: int = 0,
    rank: int = 4,
    weight_name: str = "pytorch_lora_weights.safetensors",
    text_encoder: bool = False,
) -> Path:
    """Write a random LoRA adapter for the random ``pipeline`` folder and return its file.

    PEFT LoRA layers on the UNet's attention projections (and, with ``text_encoder``, on the text
    encoder's) with random nonzero up-projections, so the adapter visibly changes pixels, saved by
    ``StableDiffusionPipeline.save_lora_weights`` in the Diffusers LoRA format as
    ``destination/weight_name``. Same arguments, same weights.
    """
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    from ..backends._diffusers_loading import quiet_loading

    folder = Path(pipeline).expanduser()
    with quiet_loading():
        unet = UNet2DConditionModel.from_pretrained(folder / "unet")
        encoder = CLIPTextModel.from_pretrained(folder / "text_encoder") if text_encoder else None
    torch.manual_seed(seed)

    def lora(*targets: str) -> LoraConfig:
        return LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), init_lora_weights=False)

    unet.add_adapter(lora("to_q", "to_k", "to_v", "to_out.0"))
    layers = {"unet_lora_layers": get_peft_model_state_dict(unet)}
    if encoder is not None:  # peft's own injection: Transformers' add_adapter may insist on a newer peft
        encoder = inject_adapter_in_model(lora("q_proj", "k_proj", "v_proj", "out_proj"), encoder)
        layers["text_encoder_lora_layers"] = get_peft_model_state_dict(encoder)
    StableDiffusionPipeline.save_lora_weights(destination, weight_name=weight_name, **layers)
    return Path(destination) / weight_name


def build_tiny_pipeline(folder: str | Path, *, seed: int = 0) -> Path:
    """The tiny random-weight pipeline (see :func:`build_random_pipeline`)."""
    return build_random_pipeline(folder, scale=1, seed=seed)


__all__ = [
    "build_random_lora",
    "build_random_pipeline",
    "build_tiny_pipeline",
    "build_tiny_upscale_pipeline",
    "write_clip_tokenizer_files",
]
