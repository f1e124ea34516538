"""The CLI against the loopback OpenAI-shaped server: one-shot, catalog, faults, subprocess, REPL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from test_repl import PROMPT, Terminal

from fixtures.images import make_png

KEY = "sk-cli-test-secret"


def _openai(server, *extra: str) -> list[str]:
    return ["--provider", "openai", "--base-url", server.base_url, "--api-key", KEY, *extra]


def test_t2i_sends_only_what_was_given(invoke, openai_server, tmp_path):
    out = tmp_path / "x.png"
    result = invoke("t2i", "a lighthouse", *_openai(openai_server, "--model", "sd-local"), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    sent = openai_server.requests_to("/images/generations")[-1].json
    assert sent["prompt"] == "a lighthouse" and sent["model"] == "sd-local"
    assert not {"size", "width", "height", "steps", "seed"} & set(sent)  # left to the provider
    [asset] = json.loads(result.stdout)["assets"]
    assert asset["path"] == str(out) and out.read_bytes()[:4] == b"\x89PNG"
    assert asset["metadata"]["backend"] == "openai" and KEY not in result.output


def test_t2i_options_and_params_reach_the_service(invoke, openai_server, tmp_path):
    args = ["--width", "64", "--height", "32", "--seed", "9", "-p", "quality=high", "-o", str(tmp_path / "y.png")]
    result = invoke("t2i", "cat", *_openai(openai_server, "--model", "sd-local"), *args)
    assert result.exit_code == 0, result.output
    sent = openai_server.requests_to("/images/generations")[-1].json
    assert sent["quality"] == "high" and (sent.get("size") == "64x32" or sent.get("width") == 64)


def test_i2i_uploads_image_and_mask(invoke, openai_server, tmp_path):
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(make_png(32, 32))
    mask.write_bytes(make_png(32, 32, mode="L"))
    args = ["--image", str(image), "--mask", str(mask), "-o", str(tmp_path / "e.png")]
    result = invoke("i2i", "make it blue", *_openai(openai_server, "--model", "sd-local"), *args)
    assert result.exit_code == 0, result.output
    edit = openai_server.requests_to("/images/edits")[-1]
    assert edit.form["prompt"] == ["make it blue"] and "mask" in edit.files
    assert {"image", "image[]"} & set(edit.files)


def test_provider_models_lists_the_service_catalog(invoke, openai_server):
    result = invoke("provider-models", "--base-url", openai_server.base_url, "--api-key", KEY, "--json")
    assert result.exit_code == 0, result.output
    assert {m["id"] for m in json.loads(result.stdout)} == {"sd-local", "wan-video"}
    assert openai_server.last.headers["authorization"] == f"Bearer {KEY}"
    table = invoke("provider-models", "--provider", "openai", "--base-url", openai_server.base_url)
    assert "sd-local" in table.stdout


def test_provider_models_openai_uses_the_configured_base_url(invoke, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    result = invoke("provider-models", "--openai", "--json")
    assert result.exit_code == 0 and "sd-local" in result.stdout


def test_service_error_is_one_line_without_the_key(invoke, openai_server):
    from fixtures.openai_server import Reply

    openai_server.enqueue("/images/generations", Reply(status=500, json={"error": {"message": "boom"}}))
    result = invoke("t2i", "cat", *_openai(openai_server, "--max-retries", "0"))
    assert result.exit_code == 1
    assert "boom" in result.stderr and "500" in result.stderr and "Traceback" not in result.output
    assert KEY not in result.output


def test_unreachable_service_is_a_connection_error(invoke, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke("t2i", "cat", "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output and result.stderr.startswith("Error:")


def test_subprocess_one_shot_against_the_loopback_server(run_cli, openai_server, tmp_path):
    out = tmp_path / "sub.png"
    result = run_cli("t2i", "a lighthouse", *_openai(openai_server), "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["assets"][0]["path"] == str(out) and out.exists()
    from fixtures.openai_server import Reply

    openai_server.enqueue("/images/generations", Reply(status=400, json={"error": {"message": "bad size"}}))
    failed = run_cli("t2i", "cat", *_openai(openai_server, "--max-retries", "0"))
    assert failed.returncode == 1 and "bad size" in failed.stderr and "Traceback" not in failed.stderr


def test_repl_switches_from_a_service_to_another_backend(cli_env, openai_server, tmp_path):
    term = Terminal([sys.executable, "-m", "abstractvision", "repl"], cli_env)
    term.expect(PROMPT)
    term.send(f"/backend openai {openai_server.base_url} {KEY} sd-local\n")
    assert "backend: openai" in term.expect(PROMPT)
    term.send(f"/set output {tmp_path}/\n")
    term.expect(PROMPT)
    term.send('"a lighthouse at dusk" --seed 3\n')
    assert str(tmp_path) in term.expect(PROMPT)
    term.send("/provider-models --json\n")
    assert '"wan-video"' in term.expect(PROMPT)
    term.send("/i2i cat --image /no/such.png\n")
    assert "does not exist" in term.expect(PROMPT)
    term.send("/backend echo\n")
    assert "backend: echo" in term.expect(PROMPT)
    term.send("/t2i a cat\n")
    assert str(tmp_path) in term.expect(PROMPT)
    term.send("/config\n")
    assert KEY not in term.expect(PROMPT)
    term.send("/exit\n")
    assert term.wait() == 0
    assert openai_server.requests_to("/images/generations")[-1].json["prompt"] == "a lighthouse at dusk"
    assert len(list(Path(tmp_path).glob("t2i-*.png"))) == 2
    assert KEY not in term.output.replace(f"/backend openai {openai_server.base_url} {KEY}", "")
    history = (Path(cli_env["XDG_DATA_HOME"]) / "abstractvision" / "repl_history").read_text()
    assert f"/backend openai {openai_server.base_url} *** sd-local" in history and KEY not in history


def test_t2v_and_i2v_write_videos_from_a_service_with_video_routes(invoke, openai_server, tmp_path, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_TEXT_TO_VIDEO_PATH", "/video/generations")
    monkeypatch.setenv("ABSTRACTVISION_IMAGE_TO_VIDEO_PATH", "/video/image-to-video")
    result = invoke(
        "t2v", "a storm", *_openai(openai_server, "--model", "wan-video"), "--num-frames", "9", "-o", f"{tmp_path}/"
    )
    assert result.exit_code == 0, result.output
    [video] = list(tmp_path.glob("t2v-*.mp4"))
    assert video.read_bytes()[4:8] == b"ftyp"
    assert openai_server.requests_to("/video/generations")[-1].json["prompt"] == "a storm"
    image = tmp_path / "still.png"
    image.write_bytes(make_png(32, 32))
    result = invoke(
        "i2v", "--image", str(image), "slow zoom", *_openai(openai_server), "-o", str(tmp_path / "v"), "--json"
    )
    assert result.exit_code == 0, result.output
    [asset] = json.loads(result.stdout)["assets"]
    assert asset["mime_type"] == "video/mp4" and asset["path"] == str(tmp_path / "v.mp4")
    assert openai_server.requests_to("/video/image-to-video")
