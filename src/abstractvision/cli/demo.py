"""``abstractvision demo``: prove the installation works, offline, in seconds.

Why random weights: a fresh machine has no model and maybe no network. The demo builds a tiny
random-weight Stable Diffusion pipeline once into the user cache and runs text-to-image and
image-to-image through the real Diffusers backend and :class:`~abstractvision.VisionManager`, so
every layer (engine, backend, manager, PNG metadata) is exercised. The pictures are noise.
"""

from __future__ import annotations

from pathlib import Path

import click

#: The one line that switches from the demo to a real model.
REAL_MODEL_LINE = (
    'abstractvision t2i "a lighthouse at dusk" --provider diffusers '
    "--model runwayml/stable-diffusion-v1-5 --allow-download"
)


def demo_pipeline_folder() -> Path:
    """Where the demo's tiny pipeline lives: ``<user cache dir>/abstractvision/demo-pipeline``."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("abstractvision")) / "demo-pipeline"


@click.command("demo")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default="the current directory",
    help="Folder for the two PNG files.",
)
def demo(output_dir: Path) -> None:
    """Offline smoke test: text->image and image->image on a tiny random-weight pipeline."""
    from ..errors import AbstractVisionError

    try:
        _run(output_dir)
    except AbstractVisionError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(output_dir: Path) -> None:
    from .. import VisionManager
    from ..backends._diffusers_loading import import_engine
    from ..backends.huggingface_diffusers import HuggingFaceDiffusersBackendConfig, HuggingFaceDiffusersVisionBackend
    from ..testing import build_tiny_pipeline

    import_engine()  # a missing extra fails here with the pip install line
    folder = demo_pipeline_folder()
    click.echo(f"Tiny random-weight Stable Diffusion pipeline: {folder}")
    build_tiny_pipeline(folder)
    config = HuggingFaceDiffusersBackendConfig(model_id=str(folder), torch_dtype="float32")
    output_dir.mkdir(parents=True, exist_ok=True)
    with VisionManager(backend=HuggingFaceDiffusersVisionBackend(config=config)) as manager:
        first = manager.generate_image("a red cat", seed=0, width=128, height=128, steps=4)
        first_path = output_dir / "demo_text_to_image.png"
        first_path.write_bytes(first.data)
        click.echo(f"text->image:  {first_path}  ({first.metadata['elapsed_s']:.2f} s, seed {first.metadata['seed']})")
        second = manager.edit_image("a blue cat", first.data, seed=1, steps=4, strength=0.6)
        second_path = output_dir / "demo_image_to_image.png"
        second_path.write_bytes(second.data)
        click.echo(
            f"image->image: {second_path}  ({second.metadata['elapsed_s']:.2f} s, seed {second.metadata['seed']})"
        )
    click.echo(
        "The weights are random, so both images are noise: this checks that the installation works "
        "(Diffusers, the backend, the manager), not what a model can draw."
    )
    click.echo("Use a real model (downloads about 4 GB once, then runs from the cache):")
    click.echo(f"  {REAL_MODEL_LINE}")
