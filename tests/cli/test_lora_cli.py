"""LoRA adapters on the command line: ``--lora PATH_OR_ID[:SCALE]`` on ``t2i``/``i2i``,
``provider-adapters``, and the REPL's ``/set lora`` and ``/adapters``.

The engine is the slow test backend with an adapter folder (``ABSTRACTVISION_SLOW_LORA_DIR``): each
adapter shifts its colour by the adapter's name and scale, so an adapter's effect is a pixel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_backends import EchoBackend

from abstractvision import VisionManager
from abstractvision.backends import register_backend, unregister_backend
from abstractvision.cli._session import BackendSession
from abstractvision.cli.repl import Repl
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.loras import pixel


@pytest.fixture
def slow_provider(monkeypatch, lora_folder):
    """``--provider slow`` in this process, with ``lora_folder`` as its adapter folder (from the environment)."""
    register_backend("slow", "abstractvision.testing.slow:SlowBackend", description="slow test backend")
    monkeypatch.setenv("ABSTRACTVISION_SLOW_LORA_DIR", str(lora_folder))
    monkeypatch.setenv("ABSTRACTVISION_SLOW_STEP_S", "0")
    yield lora_folder
    unregister_backend("slow")


def expected_colour(lora_folder: Path, adapters: list[str], seed: int = 5) -> tuple[int, ...]:
    backend = SlowBackend(SlowConfig(step_s=0.0, lora_dir=str(lora_folder)))
    return pixel(VisionManager(backend=backend).generate_image("a", seed=seed, lora_adapters=adapters).data)


def made(result) -> tuple[dict, tuple[int, ...]]:
    """(metadata, colour) of the one asset a ``--json`` command made."""
    assert result.exit_code == 0, result.output
    [asset] = json.loads(result.stdout)["assets"]
    return asset["metadata"], pixel(Path(asset["path"]).read_bytes())


def test_t2i_and_i2i_apply_repeated_lora_options(invoke, slow_provider, tmp_path):
    base = ["--provider", "slow", "--seed", "5", "--json", "-q"]
    _, baseline = made(invoke("t2i", "a", *base, "-o", str(tmp_path / "plain.png")))
    metadata, colour = made(invoke("t2i", "a", *base, "--lora", "ink:0.5", "--lora", "glow", "-o", str(tmp_path)))
    assert metadata["lora_adapters"] == [{"source": "ink", "scale": 0.5}, {"source": "glow", "scale": 1.0}]
    assert colour == expected_colour(slow_provider, ["ink:0.5", "glow"]) != baseline
    path = slow_provider / "ink.safetensors"  # a path works as well as a listed id
    _, by_path = made(invoke("t2i", "a", *base, "--lora", f"{path}:0.5", "--lora", "glow", "-o", str(tmp_path)))
    assert by_path == colour
    image = tmp_path / "in.png"
    image.write_bytes(make_png(16, 16))
    metadata, edited = made(invoke("i2i", "a", "--image", str(image), *base, "--lora", "glow:2", "-o", str(tmp_path)))
    assert metadata["task"] == "image_to_image" and metadata["lora_adapters"] == [{"source": "glow", "scale": 2.0}]
    assert edited == expected_colour(slow_provider, ["glow:2"])


@pytest.mark.parametrize(
    ("word", "message"),
    [("ink:20", "lora[0].scale: 20.0 is outside"), ("", "lora[0]: expected PATH_OR_ID[:SCALE]"), ("ink:nan", "finite")],
)
def test_a_bad_lora_word_is_a_usage_error_naming_the_option(invoke, word, message):
    EchoBackend.calls.clear()
    result = invoke("t2i", "cat", "--provider", "echo", "--lora", word)
    assert result.exit_code == 2 and "Invalid value for --lora" in result.stderr and message in result.stderr
    assert EchoBackend.calls == []


def test_the_same_adapter_twice_is_a_usage_error(invoke):
    result = invoke("t2i", "cat", "--provider", "echo", "--lora", "ink", "--lora", "styles/ink.safetensors:0.5")
    assert result.exit_code == 2 and "a second adapter named 'ink'" in result.stderr


def test_a_missing_adapter_and_a_backend_without_lora_fail_before_generating(invoke, slow_provider):
    missing = invoke("t2i", "a", "--provider", "slow", "--lora", "sketch", "-q")
    assert (
        missing.exit_code == 1 and "adapter 'sketch' not found" in missing.stderr and "Traceback" not in missing.output
    )
    EchoBackend.calls.clear()
    refused = invoke("t2i", "a", "--provider", "echo", "--lora", "ink", "-q")
    assert refused.exit_code == 1 and "does not support LoRA adapters" in refused.stderr
    assert EchoBackend.calls == []
    video = invoke("t2v", "a", "--provider", "echo", "--lora", "ink")
    assert video.exit_code == 2 and "No such option '--lora'" in video.stderr


def test_provider_adapters_lists_the_folder_as_a_table_and_as_json(invoke, slow_provider):
    listed = json.loads(invoke("provider-adapters", "--provider", "slow", "--json").stdout)
    assert [entry["id"] for entry in listed] == ["glow", "ink"]
    assert listed[1] == {
        "id": "ink",
        "path": str(slow_provider / "ink.safetensors"),
        "size_bytes": (slow_provider / "ink.safetensors").stat().st_size,
        "weight_name": None,
    }
    table = invoke("provider-adapters", "--provider", "slow", env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "slow adapters" in table.stdout and "adapter" in table.stdout
    rows = [line for line in table.stdout.splitlines() if "glow" in line or "ink" in line]
    assert len(rows) == 2 and str(slow_provider / "ink.safetensors") in table.stdout
    nothing = invoke("provider-adapters", "--provider", "echo")
    assert nothing.exit_code == 0 and "(none found)" in nothing.stderr


@pytest.fixture
def shell(echo_backends, slow_provider):
    repl = Repl(BackendSession())
    yield repl
    repl.session.close()


def test_repl_set_lora_applies_to_generations_and_edits_until_cleared(shell, capsys, tmp_path):
    assert shell.handle("/backend slow")
    assert shell.handle("/set lora ink:0.5 glow")
    assert "lora = ink:0.5 glow" in capsys.readouterr().out
    shell.handle("/defaults")
    assert "lora = ink:0.5 glow" in capsys.readouterr().out
    shell.handle(f"/t2i a --seed 5 --json -q -o {tmp_path}/")
    [asset] = json.loads(capsys.readouterr().out)["assets"]
    assert [a["source"] for a in asset["metadata"]["lora_adapters"]] == ["ink", "glow"]
    assert pixel(Path(asset["path"]).read_bytes()) == expected_colour(
        shell.session.resolved.value("lora_dir"), ["ink:0.5", "glow"]
    )
    image = tmp_path / "in.png"
    image.write_bytes(make_png(8, 8))
    shell.handle(
        f"/i2i a --image {image} --seed 5 --lora glow:2 --json -q -o {tmp_path}/"
    )  # explicit beats the default
    [edit] = json.loads(capsys.readouterr().out)["assets"]
    assert edit["metadata"]["lora_adapters"] == [{"source": "glow", "scale": 2.0}]
    shell.handle("/set lora none")
    shell.handle("/defaults")
    assert "no defaults set" in capsys.readouterr().out
    shell.handle(f"/t2i a --seed 5 --json -q -o {tmp_path}/")
    assert "lora_adapters" not in json.loads(capsys.readouterr().out)["assets"][0]["metadata"]
    shell.handle("/set lora glow")
    shell.handle("/unset lora")
    shell.handle("/defaults")
    assert "no defaults set" in capsys.readouterr().out


def test_repl_lists_adapters_and_reports_bad_lora_words(shell, capsys):
    shell.handle("/backend slow")
    shell.handle("/adapters --json")
    assert [entry["id"] for entry in json.loads(capsys.readouterr().out.split("\n", 1)[1])] == ["glow", "ink"]
    assert shell.handle("/set lora ink:30") is True
    assert "Invalid value for --lora: lora[0].scale: 30.0 is outside" in capsys.readouterr().err
    shell.handle("/defaults")
    assert "no defaults set" in capsys.readouterr().out
    shell.handle("/backend echo")
    shell.handle("/set lora ink")
    shell.handle("/t2i a -q")
    assert "does not support LoRA adapters" in capsys.readouterr().err
