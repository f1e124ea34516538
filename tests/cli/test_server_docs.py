"""docs/server.md shows what the server does: its curl and Python examples run against a real one.

Every ``bash`` block with a ``curl`` and every ``python`` block of the page runs, in page order,
against ``abstractvision serve`` processes (the slow test backend that also makes stand-in videos and
takes the page's LoRA adapters, serving the model id the page uses): blocks that send one of the
page's example keys go to a server started with those keys, the others to one without keys. A curl
line whose comment starts with a status (``# 404 ...``) must answer that status; every other curl
must succeed (``--fail-with-body``). The page's status table is checked against the server's own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.live_server import free_port, wait_until_healthy

PAGE = Path(__file__).resolve().parents[2] / "docs" / "server.md"

#: What the page's examples assume: the default address, the served model id, the example keys.
DOC_ADDRESS = "127.0.0.1:8000"
DOC_MODEL = "sd15"
DOC_KEYS = ("sk-alice-1", "sk-bob-2")

_LAUNCH = (
    "import sys\nfrom abstractvision.backends import register_backend\nfrom abstractvision.cli import main\n"
    "register_backend('slow-video', 'cli_backends:SlowVideoBackend', description='docs test backend')\n"
    "sys.argv = ['abstractvision', *sys.argv[1:]]\nmain()\n"
)

_BASH_PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
expect_status() {
  local want=$1; shift; shift  # drop the word curl
  local got; got=$(command curl -s -o /dev/null -w '%{http_code}' "$@")
  if [ "$got" != "$want" ]; then echo "expected HTTP $want, got $got: curl $*" >&2; exit 1; fi
}
"""


def fenced_blocks(language: str) -> list[str]:
    """The page's fenced blocks in ``language``, in order, without their fence lines."""
    pattern = re.compile(rf"^```{language}\n(.*?)^```", re.S | re.M)
    return pattern.findall(PAGE.read_text())


def _bash_script(blocks: list[str], address: str) -> str:
    lines = [_BASH_PRELUDE]
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("  #")
            status = re.match(r"\s*(\d{3})\b", comment)
            if status and command.lstrip().startswith("curl "):
                command = f"expect_status {status.group(1)} {command.strip()}"
            lines.append(command.replace(DOC_ADDRESS, address))
    return "\n".join(lines) + "\n"


def _uses_keys(block: str) -> bool:
    return any(key in block for key in DOC_KEYS)


@pytest.fixture
def doc_servers(cli_env, tmp_path, lora_folder):
    """``{False: address of a server without keys, True: address of one with the page's keys}``; both
    offer the page's LoRA adapters (``ink``, ``glow``)."""
    started: list[subprocess.Popen] = []
    addresses: dict[bool, str] = {}
    for keyed in (False, True):
        port = free_port()
        args = ["serve", "--provider", "slow-video", "--model", DOC_MODEL, "--slow-step-s", "0.01", "--slow-previews"]
        args += ["--lora-dir", str(lora_folder)]
        args += ["--port", str(port), "--store", str(tmp_path / f"store-{keyed}")]
        if keyed:
            args += [arg for key in DOC_KEYS for arg in ("--api-key", key)]
        log = (tmp_path / f"serve-{keyed}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, *args], stdout=log, stderr=subprocess.STDOUT, env=cli_env
        )
        started.append(process)
        wait_until_healthy(f"http://127.0.0.1:{port}", process=process)
        addresses[keyed] = f"127.0.0.1:{port}"
    yield addresses
    for process in started:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture
def workdir(tmp_path):
    """Where the examples run: the input files they name (photo.png, style.png, mask.png)."""
    from PIL import Image

    folder = tmp_path / "work"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(folder / "photo.png")
    Image.new("RGB", (64, 64), (20, 60, 200)).save(folder / "style.png")
    Image.new("L", (64, 64), 255).save(folder / "mask.png")
    return folder


@pytest.mark.timeout(180)
@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the page's examples use curl and jq")
def test_every_curl_example_answers_as_the_page_says(doc_servers, workdir, cli_env):
    blocks = [block for block in fenced_blocks("bash") if "curl " in block]
    assert len(blocks) >= 10
    for keyed in (False, True):
        script = _bash_script([b for b in blocks if _uses_keys(b) == keyed], doc_servers[keyed])
        result = subprocess.run(
            ["bash", "-c", script], cwd=workdir, env=cli_env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{result.stderr}\n--- the script:\n{script}"


@pytest.mark.timeout(300)
def test_every_python_example_runs(doc_servers, workdir, cli_env):
    blocks = fenced_blocks("python")
    assert len(blocks) >= 5
    for number, block in enumerate(blocks, 1):
        script = workdir / f"example_{number}.py"
        script.write_text(block.replace(DOC_ADDRESS, doc_servers[_uses_keys(block)]))
        result = subprocess.run(
            [sys.executable, str(script)], cwd=workdir, env=cli_env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"python example {number} failed:\n{result.stderr}\n--- the block:\n{block}"


def test_the_status_table_is_the_servers():
    """Each library error's row in the page's table is the status, type and code the server answers with."""
    from abstractvision.server.errors import _STATUS

    text = PAGE.read_text()
    missing = [
        f"| `{kind.__name__}` | {status} | `{type_}` | {f'`{code}`' if code else '—'} |"
        for kind, status, type_, code in _STATUS
    ]
    assert [row for row in missing if row not in text] == []
