"""The REPL: line handling in-process, and a whole session through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest
from cli_backends import FAILING_SEED

from abstractvision.cli._session import BackendSession
from abstractvision.cli.repl import Repl
from abstractvision.media import read_png_metadata

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


@pytest.fixture
def shell(echo_backends):
    repl = Repl(BackendSession())
    yield repl
    repl.session.close()


def test_session_switches_sets_defaults_generates_fails_and_goes_on(shell, capsys, tmp_path):
    assert shell.handle("/backend echo")
    assert shell.handle("/set steps 3")
    assert shell.handle(f"/set output {tmp_path}/")
    assert shell.handle("a red cat")  # a bare line is /t2i
    first = capsys.readouterr()
    assert "backend: echo" in first.out
    [path] = [line for line in first.out.splitlines() if line.startswith(str(tmp_path))]
    assert Path(path).exists()
    assert shell.handle(f"/t2i cat --seed {FAILING_SEED}")  # fails, the session goes on
    assert f"error: simulated provider failure for seed {FAILING_SEED}" in capsys.readouterr().err
    assert shell.handle("/backend echo2")
    assert "[echo] unloaded" in capsys.readouterr().err  # switching released the previous backend
    assert shell.handle("/t2i a blue cat --seed 5 --json")
    [asset] = json.loads(capsys.readouterr().out)["assets"]
    assert asset["metadata"]["request"]["steps"] == 3 and asset["metadata"]["request"]["seed"] == 5
    assert asset["metadata"]["backend"] == "echo2"
    assert shell.handle("a cat's toy")  # an apostrophe in a bare prompt is text, not shell quoting
    made = Path(capsys.readouterr().out.strip()).read_bytes()
    assert read_png_metadata(made)["request"]["prompt"] == "a cat's toy"
    assert shell.handle("/exit") is False


def test_explicit_options_beat_defaults_and_unset_restores_the_backend_choice(shell, capsys):
    shell.handle("/backend echo")
    shell.handle("/set steps 3")
    capsys.readouterr()
    shell.handle("/t2i cat --steps 5 --json -q")
    assert json.loads(capsys.readouterr().out)["assets"][0]["metadata"]["request"]["steps"] == 5
    shell.handle("/unset steps")
    shell.handle("/defaults")
    assert "no defaults set" in capsys.readouterr().out
    shell.handle("/t2i cat --json -q")
    assert json.loads(capsys.readouterr().out)["assets"][0]["metadata"]["request"]["steps"] is None


@pytest.mark.parametrize(
    "line,message",
    [
        ("/set colour red", "unknown key 'colour'"),
        ("/set width wide", "Invalid value for '--width'"),
        ("/backend openai", "the openai backend needs a base URL"),
        ("/backend sdcpp a b c d e", "/backend sdcpp takes"),
        ("/backend midjourney", "unknown backend 'midjourney'"),
        ("/cap-model nope-1", "not in the capability registry"),
        ("/t2i", "Missing argument 'PROMPT...'"),
        ("/i2i cat", "Missing option '--image'"),
        ("/frobnicate", "unknown command /frobnicate"),
        ('/t2i "unterminated', "No closing quotation"),
        ("a cat", "no backend selected"),
    ],
)
def test_bad_lines_print_one_error_and_the_session_goes_on(shell, capsys, line, message):
    assert shell.handle(line) is True
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_backend_forms_map_positional_arguments_and_named_words_to_settings(shell, capsys):
    forms = {
        "/backend sdcpp /m/sd.safetensors /bin/sd-cli": {"model": "/m/sd.safetensors", "sd_cli_path": "/bin/sd-cli"},
        "/backend sdcpp /m/q.gguf /m/vae.st /m/llm.gguf": {
            "diffusion_model": "/m/q.gguf",
            "vae": "/m/vae.st",
            "llm": "/m/llm.gguf",
        },
        "/backend diffusers some/model cpu float32": {
            "model_id": "some/model",
            "device": "cpu",
            "torch_dtype": "float32",
        },
        "/backend diffusers some/model dtype=float16 scheduler=euler allow_download=yes": {
            "model_id": "some/model",
            "torch_dtype": "float16",
            "scheduler": "euler",
            "allow_download": True,
        },
        "/backend sdcpp /m/sd.safetensors sd-cli=/bin/sd timeout=30": {"sd_cli_path": "/bin/sd", "timeout_s": 30.0},
        "/backend openai http://127.0.0.1:9/v1 sk-x gpt-image-1": {
            "base_url": "http://127.0.0.1:9/v1",
            "model_id": "gpt-image-1",
        },
    }
    for line, expected in forms.items():
        shell.handle(line)  # building the backend may fail (engine missing); the settings are what we check
        resolved = shell.session.resolved
        for name, value in expected.items():
            assert resolved.value(name) == value and resolved.source(name) == "argument", (line, name)
    assert shell.session.resolved.value("api_key") == "sk-x"
    shell.handle("/config --json")
    shown = capsys.readouterr().out
    assert "sk-x" not in shown and '"provider"' in shown


def test_a_backend_word_that_fits_no_form_lists_the_forms_and_the_settings(shell, capsys):
    shell.handle("/backend diffusers a b c d")
    err = capsys.readouterr().err
    assert "/backend diffusers takes (no arguments) | <model_id>" in err
    assert "name=value for:" in err and "scheduler" in err


def test_registry_commands_and_lifecycle(shell, capsys):
    shell.handle("/models --task text_to_image --json")
    assert "gpt-image-1" in capsys.readouterr().out
    shell.handle("/show-model gpt-image-1")
    assert "text_to_image" in capsys.readouterr().out
    shell.handle("/cap-model dall-e-3")
    shell.handle("/backend echo")
    shell.handle("/preload")
    shell.handle("/provider-models --task image_to_image --json")
    out = capsys.readouterr().out
    assert "preloaded" in out and '"echo-image"' in out and "echo-video" not in out
    shell.handle("/i2i cat --image /no/such.png")  # usage error from click: a missing file
    assert "does not exist" in capsys.readouterr().err
    shell.handle("/unload")
    assert "[echo] unloaded" in capsys.readouterr().err
    shell.handle("/cap-model off")
    shell.handle("/help")
    assert "/backend openai <base_url>" in capsys.readouterr().out


class Terminal:
    """A child process on a pseudo-terminal; ``send`` a line, ``expect`` text, as a user would."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execvpe(argv[0], argv, env)
        self.output = ""

    def expect(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        start = len(self.output)
        while True:
            match = re.search(pattern, self.output[start:])
            if match:
                return self.output[start : start + match.end()]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; output so far:\n{self.output}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    chunk = ""
                if not chunk:
                    raise AssertionError(f"terminal closed waiting for {pattern!r}; output:\n{self.output}")
                self.output += ANSI.sub("", chunk)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                select.select([self.fd], [], [], 0.1)
                os.read(self.fd, 65536)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError("the REPL did not exit")


PROMPT = r"abstractvision \([^)]*\)> $"


def test_repl_through_a_pseudo_terminal(cli_env, tmp_path):
    out = tmp_path / "renders"
    term = Terminal([sys.executable, "-m", "abstractvision", "repl"], cli_env)
    term.expect(PROMPT)
    term.send("/backend echo\n")
    assert "backend: echo" in term.expect(PROMPT)
    term.send("/set steps 3\n")
    term.expect(PROMPT)
    term.send(f"/set output {out}/\n")
    term.expect(PROMPT)
    term.send("a red cat\n")
    made = term.expect(PROMPT)
    assert re.search(re.escape(str(out)) + r"/t2i-\d+-[0-9a-f]{8}\.png", made), made
    term.send(f"/t2i cat --seed {FAILING_SEED}\n")
    assert "error: simulated provider failure" in term.expect(PROMPT)
    term.send("/backend echo2\n")
    switched = term.expect(PROMPT)
    assert "[echo] unloaded" in switched and "backend: echo2" in switched
    term.send("/provider-m\t--json\n")  # tab completes the command name
    assert '"echo-image"' in term.expect(PROMPT)
    term.send("/t2i a blue cat --seed 5 --json -q\n")
    document = term.expect(PROMPT)
    assert '"steps": 3' in document and '"seed": 5' in document and '"backend": "echo2"' in document
    term.send("/exit\n")
    assert term.wait() == 0
    assert len(list(out.glob("t2i-*.png"))) == 2
    history = Path(cli_env["XDG_DATA_HOME"]) / "abstractvision" / "repl_history"
    assert "/backend echo2" in history.read_text()


@pytest.mark.timeout(120)
def test_keys_and_url_passwords_never_reach_the_history_file_even_on_lines_that_do_not_parse(cli_env):
    term = Terminal([sys.executable, "-m", "abstractvision", "repl"], cli_env)
    term.expect(PROMPT)
    term.send('/backend openai api_key="sk-unbalanced-1234\n')  # shlex fails: no closing quotation
    assert "error:" in term.expect(PROMPT)
    term.send("/backend openai https://alice:hunter2@127.0.0.1:9/v1 plainkey42 gpt-image-1\n")
    assert "backend: openai" in term.expect(PROMPT)  # parsed: the positional api_key slot
    term.send("/t2i 'a cat --api-key flagkey77 --param token=tok-5555\n")  # unbalanced again
    assert "error:" in term.expect(PROMPT)
    term.send("/exit\n")
    assert term.wait() == 0
    history = (Path(cli_env["XDG_DATA_HOME"]) / "abstractvision" / "repl_history").read_text()
    for secret in ("sk-unbalanced-1234", "hunter2", "plainkey42", "flagkey77", "tok-5555"):
        assert secret not in history
    assert "/backend openai https://alice:***@127.0.0.1:9/v1 *** gpt-image-1" in history
    assert "/t2i 'a cat --api-key *** --param token=***" in history


@pytest.mark.parametrize(
    "line,kept",
    [
        ("/backend openai https://h/v1 sk-live-abcdef", "/backend openai https://h/v1 ***"),
        ('/backend openai api_key="sk-1234567', "/backend openai api_key=***"),
        ("a cat, sk-proj-abcdefgh in the prompt", "a cat, *** in the prompt"),
        ("/backend diffusers org/model cpu", "/backend diffusers org/model cpu"),
        ("/t2i a task-oriented robot --steps 4", "/t2i a task-oriented robot --steps 4"),
    ],
)
def test_redact_line_masks_only_secrets(line, kept):
    from abstractvision.cli.repl import redact_line

    assert redact_line(line) == kept


def test_the_environment_backend_is_used_until_switched(cli_env):
    term = Terminal([sys.executable, "-m", "abstractvision", "repl"], {**cli_env, "ABSTRACTVISION_PROVIDER": "echo"})
    term.expect(r"abstractvision \(echo\)> $")
    term.send("/config\n")
    assert re.search(r"provider\s*│\s*echo\s*│\s*env ABSTRACTVISION_PROVIDER", term.expect(PROMPT))
    term.send("cat -q\n")
    outputs = str(Path(cli_env["XDG_DATA_HOME"]) / "abstractvision" / "outputs")
    assert outputs in term.expect(PROMPT)  # generated on the env's backend, into the default outputs folder
    term.send("\x04")  # Ctrl-D leaves like /exit
    assert term.wait() == 0
