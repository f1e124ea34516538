"""``abstractvision serve`` as a command: its flags, what it imports, who it lets in, what it prints.

What the server then does over HTTP is tested in tests/server/; here the command's own rules:
``--help`` stays light, a non-loopback address needs keys (or ``--no-auth`` on purpose), keys come
from flags, a comma list variable and a file, a missing ``[server]`` extra says which pip line
fixes it, and the startup line tells URL, model and whether keys are needed without showing one.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from abstractvision.cli.serve import serve, served_app

#: Modules the server stack (and the engines) bring; ``--help`` must import none of them.
SERVER_STACK = ("fastapi", "uvicorn", "starlette", "pydantic", "multipart", "torch", "diffusers", "PIL", "numpy")

BACKEND_FLAGS = ("--provider", "--model", "--base-url", "--upstream-api-key", "--device", "--sd-cli", "--timeout")
SERVER_FLAGS = (
    "--host",
    "--port",
    "--api-key",
    "--api-keys-file",
    "--no-auth",
    "--max-queue",
    "--concurrency",
    "--store",
    "--preload",
    "--max-n",
    "--max-pixels",
    "--max-body-mb",
    "--grace-s",
    "--log-level",
)


def _help_and_modules(cli_env: dict[str, str], *args: str) -> tuple[str, list[str]]:
    """``abstractvision ARGS`` (a help) in a fresh interpreter: its output, and which heavy modules it imported."""
    code = (
        "import sys\nfrom abstractvision.cli import cli\n"
        f"try:\n    cli({list(args)!r}, prog_name='abstractvision')\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_STACK!r})))\n"
        "print('SERVER', sorted(m for m in sys.modules if m.startswith('abstractvision.server.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stdout.split("LOADED", 1)[1].splitlines()[0]


@pytest.mark.timeout(60)
def test_serve_help_lists_backend_and_server_flags_and_imports_no_server_stack(cli_env):
    out, loaded = _help_and_modules(cli_env, "serve", "--help")
    assert loaded.strip() == "[]"
    missing = [flag for flag in (*BACKEND_FLAGS, *SERVER_FLAGS) if f"  {flag} " not in out]
    assert missing == []
    # --api-key is the server's own keys; the upstream service's key is --upstream-api-key
    assert "Authorization: Bearer" in out.split("  --api-key ", 1)[1].split("\n  --", 1)[0]


@pytest.mark.timeout(60)
def test_top_level_help_lists_serve_and_stays_light(cli_env):
    out, loaded = _help_and_modules(cli_env, "--help")
    assert loaded.strip() == "[]"
    assert "SERVER []" in out and "  serve " in out


@pytest.mark.timeout(60)
def test_a_non_loopback_address_without_keys_refuses_to_start(run_cli, tmp_path):
    result = run_cli("serve", "--provider", "echo", "--host", "0.0.0.0", "--store", str(tmp_path / "s"), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: refusing to serve 0.0.0.0 without API keys: pass --api-key KEY (or "
        "ABSTRACTVISION_SERVER_API_KEYS), or --no-auth to serve it open on purpose"
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "s").exists()


@pytest.mark.timeout(60)
def test_a_non_loopback_address_starts_with_no_auth(server_process, tmp_path):
    server = server_process("--provider", "slow", "--host", "0.0.0.0", "--no-auth", "--store", str(tmp_path / "s"))
    assert httpx.get(f"{server.base_url}/models", timeout=10).status_code == 200
    assert "no API keys" in server.output().splitlines()[0]


@pytest.mark.timeout(60)
def test_a_non_loopback_address_starts_with_a_key_and_the_startup_line_never_shows_it(server_process, tmp_path):
    key = "sk-serve-test-0123456789"
    server = server_process(
        "--provider", "slow", "--model", "slow-xl", "--host", "0.0.0.0", "--api-key", key, "--store", str(tmp_path)
    )
    port = server.url.rsplit(":", 1)[1]
    assert server.output().splitlines()[0] == (
        f"abstractvision serve: http://0.0.0.0:{port}  model slow-xl (slow)  1 API key(s) required  store {tmp_path}"
    )
    assert httpx.get(f"{server.base_url}/models", timeout=10).status_code == 401
    reply = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert reply.status_code == 200 and reply.json()["data"][0]["id"] == "slow-xl"
    server.terminate()
    assert key not in server.output() and key[3:] not in server.output()


def _served(tmp_path, *args: str):
    """``serve ARGS`` parsed by the real command and built as it would listen (no socket)."""
    context = serve.make_context("serve", ["--provider", "slow", "--store", str(tmp_path / "s"), *args])
    return served_app(dict(context.params))


@pytest.fixture
def slow_registered():
    from abstractvision.backends import register_backend, unregister_backend

    register_backend("slow", "abstractvision.testing.slow:SlowBackend", description="slow test backend")
    yield
    unregister_backend("slow")


def _owner(app, key: str) -> str:
    return app.state.service.keys.owner(key)


def test_the_keys_variable_is_a_comma_list_and_spaces_do_not_count(slow_registered, tmp_path, monkeypatch):
    from abstractvision.server.errors import APIError

    monkeypatch.setenv("ABSTRACTVISION_SERVER_API_KEYS", " key-alice ,  key-bob,, ")
    app, config, banner = _served(tmp_path, "--host", "0.0.0.0")
    assert len(config.api_keys) == 2 and "2 API key(s) required" in banner
    assert _owner(app, "key-alice") != _owner(app, "key-bob")
    with pytest.raises(APIError) as refused:
        _owner(app, "key-alice ,  key-bob")
    assert refused.value.status == 401
    assert "key-alice" not in banner + repr(config) + repr(app.state.service)


def test_the_keys_flag_repeats_and_the_flag_beats_the_variable(slow_registered, tmp_path, monkeypatch):
    from abstractvision.server.errors import APIError

    monkeypatch.setenv("ABSTRACTVISION_SERVER_API_KEYS", "key-from-env")
    app, config, _ = _served(tmp_path, "--api-key", "key-1", "--api-key", "key-2")
    assert len(config.api_keys) == 2 and _owner(app, "key-2")
    with pytest.raises(APIError):
        _owner(app, "key-from-env")


def test_a_keys_file_gives_one_key_a_line_with_comments(slow_registered, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# the team's keys\nkey-carol   # carol\n\n  key-dave\n")
    app, config, banner = _served(tmp_path, "--api-keys-file", str(keys), "--api-key", "key-erin")
    assert len(config.api_keys) == 3 and "3 API key(s) required" in banner
    assert len({_owner(app, k) for k in ("key-carol", "key-dave", "key-erin")}) == 3


@pytest.mark.timeout(60)
def test_an_unreadable_keys_file_is_an_error_naming_it(run_cli, tmp_path):
    missing = tmp_path / "no-such-keys.txt"
    result = run_cli("serve", "--provider", "echo", "--api-keys-file", str(missing), "--store", str(tmp_path / "s"))
    assert result.returncode == 1 and f"api_keys_file: cannot read {missing}" in result.stderr


#: A meta path finder that makes the [server] extra look uninstalled (as a fresh environment would).
_BLOCK_SERVER_STACK = """
import sys
class NoServerExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fastapi", "uvicorn", "starlette"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoServerExtra())
from abstractvision.cli import main
sys.argv = ["abstractvision", *sys.argv[1:]]
main()
"""


@pytest.mark.timeout(60)
def test_without_the_server_extra_it_says_which_pip_line_installs_it(cli_env, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_SERVER_STACK, "serve", "--provider", "echo", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert result.returncode == 1
    assert 'pip install "abstractvision[server]"' in result.stderr
    assert "abstractvision serve needs fastapi" in result.stderr and "Traceback" not in result.stderr
