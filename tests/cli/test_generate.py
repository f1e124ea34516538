"""``t2i``/``i2i``/``t2v``/``i2v`` through the real click group, against the in-test echo backend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_backends import FAILING_SEED, EchoBackend

from abstractvision import LocalAssetStore
from abstractvision.media import read_png_metadata
from fixtures.images import make_png


def _assets(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["assets"]


def test_t2i_leaves_unset_options_to_the_backend(invoke, tmp_path):
    out = tmp_path / "cat.png"
    [asset] = _assets(invoke("t2i", "a", "red", "cat", "--provider", "echo", "-o", str(out), "--json", "-q"))
    sent = asset["metadata"]["request"]
    assert sent["prompt"] == "a red cat"
    for name in ("width", "height", "steps", "seed", "guidance_scale", "negative_prompt"):
        assert sent[name] is None, name  # the CLI invents nothing
    assert sent["extra"] == {}
    assert asset["path"] == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_png_metadata(out.read_bytes())["task"] == "text_to_image"


def test_t2i_forwards_every_generation_option(invoke, tmp_path):
    args = ["--width", "64", "--height", "48", "--steps", "3", "--seed", "7", "--guidance-scale", "4.5"]
    args += ["--negative-prompt", "blurry", "--param", "quality=high", "-p", "n_images=2", "-p", "style=[1,2]"]
    [asset] = _assets(invoke("t2i", "cat", "--provider", "echo", *args, "-o", str(tmp_path / "x.png"), "--json"))
    sent = asset["metadata"]["request"]
    assert (sent["width"], sent["height"], sent["steps"], sent["seed"]) == (64, 48, 3, 7)
    assert sent["guidance_scale"] == 4.5 and sent["negative_prompt"] == "blurry"
    assert sent["extra"] == {"quality": "high", "n_images": 2, "style": [1, 2]}


@pytest.fixture
def outputs(monkeypatch, tmp_path) -> Path:
    """The documented default folder, with the user data directory moved into ``tmp_path``."""
    from platformdirs import user_data_dir

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    return Path(user_data_dir("abstractvision")) / "outputs"


def test_without_output_results_get_readable_names_in_the_outputs_folder(invoke, outputs, tmp_path):
    result = invoke("t2i", "A Lighthouse", "at dawn!", "--provider", "echo", "--seed", "1234", "-q")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.parent == outputs and re.fullmatch(r"\d{8}-\d{6}_a-lighthouse-at-dawn_s1234\.png", path.name)
    assert read_png_metadata(path.read_bytes())["seed"] == 1234
    assert not (tmp_path / "store").exists()  # the content-addressed store is the hosts' (and the fallback)


def test_default_names_omit_a_missing_seed_and_never_overwrite(invoke, outputs):
    (single,) = _assets(invoke("t2i", "Café à l'aube — 灯台", "--provider", "echo", "--json", "-q"))
    assert re.fullmatch(r"\d{8}-\d{6}_cafe-a-l-aube\.png", Path(single["path"]).name)  # no seed: no _s part
    assets = _assets(invoke("t2i", "Café à l'aube", "--provider", "echo", "--seeds", "5,5,5", "--json", "-q"))
    names = [Path(asset["path"]).name for asset in assets]
    stem = names[0].removesuffix(".png")
    assert re.fullmatch(r"\d{8}-\d{6}_cafe-a-l-aube_s5", stem)
    assert names == [f"{stem}.png", f"{stem}-2.png", f"{stem}-3.png"]
    assert all(Path(asset["path"]).parent == outputs and "artifact" not in asset for asset in assets)


def test_an_unusable_outputs_folder_fails_before_generation(invoke, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data directory would be")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    EchoBackend.calls.clear()
    result = invoke("t2i", "cat", "--provider", "echo")
    assert result.exit_code == 1 and "output: cannot create the folder" in result.stderr
    assert EchoBackend.calls == [] and "Traceback" not in result.output


def test_output_directory_gets_one_file_per_seed(invoke, tmp_path):
    folder = tmp_path / "renders/"
    assets = _assets(invoke("t2i", "cat", "--provider", "echo", "--seeds", "1,2,3", "-o", f"{folder}/", "--json"))
    assert [a["metadata"]["seed"] for a in assets] == [1, 2, 3]
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 3 and all(n.startswith("t2i-seed") and n.endswith(".png") for n in names)


def test_count_with_a_file_name_numbers_the_files(invoke, tmp_path):
    assets = _assets(
        invoke("t2i", "cat", "--provider", "echo", "-n", "2", "--seed", "40", "-o", str(tmp_path / "c"), "--json")
    )
    assert [Path(a["path"]).name for a in assets] == ["c-1.png", "c-2.png"]
    assert [a["metadata"]["seed"] for a in assets] == [40, 41]


def test_plain_output_prints_one_path_per_line(invoke, tmp_path):
    result = invoke("t2i", "cat", "--provider", "echo", "-n", "2", "-o", str(tmp_path), "-q")
    paths = result.stdout.split()
    assert result.exit_code == 0 and len(paths) == 2 and all(Path(p).exists() for p in paths)


def test_i2i_sends_image_mask_and_strength(invoke, tmp_path):
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(make_png(32, 32))
    mask.write_bytes(make_png(32, 32, mode="L"))
    args = ["--image", str(image), "--mask", str(mask), "--strength", "0.4", "--provider", "echo", "--json", "-q"]
    [asset] = _assets(invoke("i2i", "make", "it", "blue", *args))
    sent = asset["metadata"]["request"]
    assert sent["prompt"] == "make it blue" and sent["image_bytes"] == image.stat().st_size
    assert sent["mask_bytes"] == mask.stat().st_size and sent["extra"] == {"strength": 0.4}


@pytest.mark.parametrize(
    "args",
    [
        ("i2i", "cat", "--provider", "echo"),  # --image is required
        ("i2i", "cat", "--image", "/no/such.png", "--provider", "echo"),
        ("t2i", "--provider", "echo"),  # no prompt
        ("t2i", "cat", "--steps", "0"),
        ("t2i", "cat", "--width", "wide"),
        ("t2i", "cat", "--strength", "0.5"),  # not a t2i option
        ("t2i", "cat", "--provider", "echo", "--param", "novalue"),
        ("t2i", "cat", "--provider", "echo", "--seeds", "1,x"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(invoke, tmp_path, args):
    result = invoke(*args, "-o", str(tmp_path / "out/"))
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert "Traceback" not in result.output


def test_unsupported_task_is_a_generation_error_exit_1(invoke, tmp_path):
    result = invoke("t2v", "a", "storm", "--provider", "echo", "-o", str(tmp_path / "v.mp4"))
    assert result.exit_code == 1
    [message] = [line for line in result.stderr.splitlines() if not line.startswith("[echo]")]
    assert message.startswith("Error: the echo backend does not support text_to_video")
    assert "text_to_video" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "v.mp4").exists()


def test_i2v_needs_its_image_and_is_gated_like_t2v(invoke, tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(make_png(16, 16))
    result = invoke("i2v", "--image", str(image), "--provider", "echo")
    assert result.exit_code == 1 and "image_to_video" in result.stderr


def test_invalid_request_names_the_field(invoke, tmp_path):
    image = tmp_path / "not-an-image.png"
    image.write_bytes(b"plain text")
    result = invoke("i2i", "cat", "--image", str(image), "--provider", "echo")
    assert result.exit_code == 1 and "image" in result.stderr and "Traceback" not in result.output


def test_a_failed_batch_item_keeps_the_items_made_before_it(invoke, tmp_path):
    seeds = f"{FAILING_SEED - 2},{FAILING_SEED - 1},{FAILING_SEED}"
    result = invoke("t2i", "cat", "--provider", "echo", "--seeds", seeds, "-o", str(tmp_path), "-q")
    assert result.exit_code == 1
    assert len(result.stdout.split()) == 2 and len(list(tmp_path.glob("t2i-*.png"))) == 2
    assert f"simulated provider failure for seed {FAILING_SEED}" in result.stderr


def test_cap_model_refuses_what_the_registry_says_the_model_cannot_do(invoke, tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(make_png(16, 16))
    result = invoke("i2i", "cat", "--image", str(image), "--provider", "echo", "--cap-model", "dall-e-3")
    assert result.exit_code == 1 and "does not support image_to_image" in result.stderr
    assert invoke("t2i", "cat", "--provider", "echo", "--cap-model", "dall-e-3", "-q").exit_code == 0


def test_output_under_a_file_fails_before_generation(invoke, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    EchoBackend.calls.clear()
    for output in (blocker / "sub" / "x.png", blocker / "x.png"):
        result = invoke("t2i", "cat", "--provider", "echo", "-o", str(output))
        assert result.exit_code == 1 and "output: cannot create the folder" in result.stderr
    assert EchoBackend.calls == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc: a folder no one can write in")
def test_output_in_a_folder_that_refuses_files_fails_before_generation(invoke):
    EchoBackend.calls.clear()  # /proc passes os.access(W_OK) for root and exists, but refuses new files
    result = invoke("t2i", "cat", "--provider", "echo", "-o", "/proc/abstractvision-out.png")
    assert result.exit_code == 1 and "output: cannot write in the folder /proc" in result.stderr
    assert EchoBackend.calls == [] and "Traceback" not in result.output


def test_a_write_that_fails_after_generation_keeps_the_result_in_the_store(invoke, tmp_path):
    folder = tmp_path / "renders"
    args = ["--provider", "echo-breaks-folder", "--param", f"output_folder={folder}", "--json"]
    result = invoke("t2i", "cat", *args, "-o", str(folder / "cat.png"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    [asset] = json.loads(result.stdout)["assets"]
    kept = Path(asset["path"])
    assert kept.parent == tmp_path / "store" and read_png_metadata(kept.read_bytes())["backend"] == "echo-breaks-folder"
    assert f"output: could not write {folder / 'cat.png'}" in result.stderr
    assert f"the result is kept at {kept}" in result.stderr
    assert LocalAssetStore(tmp_path / "store").load_bytes(asset["artifact"]) == kept.read_bytes()


def test_no_provider_says_how_to_choose_one(invoke):
    result = invoke("t2i", "cat")
    assert result.exit_code == 1
    assert "--provider" in result.stderr and "ABSTRACTVISION_PROVIDER" in result.stderr


def test_provider_comes_from_the_environment(invoke, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_PROVIDER", "echo")
    assert invoke("t2i", "cat", "-q").exit_code == 0


def test_unknown_provider_lists_the_known_ones(invoke):
    result = invoke("t2i", "cat", "--provider", "dalle")
    assert result.exit_code == 2 and "known backends:" in result.stderr and "echo" in result.stderr
    assert "Traceback" not in result.output


def test_provider_models_lists_the_backend_catalog(invoke):
    result = invoke("provider-models", "--provider", "echo", "--json")
    assert [m["id"] for m in json.loads(result.stdout)] == ["echo-image", "echo-video"]
    result = invoke("provider-models", "--provider", "echo", "--task", "text_to_video", "--json")
    assert [m["id"] for m in json.loads(result.stdout)] == ["echo-video"]
    assert "echo-image" in invoke("provider-models", "--provider", "echo").stdout


def test_provider_models_rejects_an_unknown_task(invoke):
    result = invoke("provider-models", "--provider", "echo", "--task", "painting")
    assert result.exit_code == 1 and "task" in result.stderr


def test_provider_models_openai_conflicts_with_another_provider(invoke):
    assert invoke("provider-models", "--openai", "--provider", "echo").exit_code == 2


def test_error_messages_mask_a_password_in_any_url(invoke):
    for url in ("ftp://alice:hunter2@127.0.0.1:9/v1", "http://alice:hunter2@127.0.0.1:9/v1"):
        result = invoke("t2i", "cat", "--provider", "openai", "--base-url", url, "--max-retries", "0", "-q")
        assert result.exit_code == 1 and "alice:***@127.0.0.1:9" in result.stderr, result.output
        assert "hunter2" not in result.output and "Traceback" not in result.output
