"""``config``: effective settings with their source, secrets redacted."""

from __future__ import annotations

import json

from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppBackendConfig
from abstractvision.config import declared_settings


def test_config_reports_flag_env_and_default_sources(invoke, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_SDCPP_VAE", "/models/vae.safetensors")
    result = invoke("config", "--provider", "sdcpp", "--model", "/models/sd.gguf", "--timeout", "9", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    sdcpp = {f"sdcpp.{s.name}" for s in declared_settings(StableDiffusionCppBackendConfig)}
    assert set(shown) == {"provider", "store_dir", "model_capabilities_path"} | sdcpp
    assert shown["provider"] == {"value": "sdcpp", "source": "flag"}
    assert shown["sdcpp.model"] == {"value": "/models/sd.gguf", "source": "flag"}  # --model goes to sdcpp's field
    assert shown["sdcpp.timeout_s"] == {"value": 9.0, "source": "flag"}
    assert shown["sdcpp.vae"] == {"value": "/models/vae.safetensors", "source": "env ABSTRACTVISION_SDCPP_VAE"}
    assert shown["sdcpp.mode"] == {"value": "auto", "source": "default"}


def test_config_without_a_backend_lists_every_backend(invoke):
    shown = json.loads(invoke("config", "--json").stdout)
    assert {"openai.base_url", "diffusers.device", "sdcpp.sd_cli_path"} <= set(shown)
    flagged = json.loads(invoke("config", "--device", "cpu", "--json").stdout)  # shows under its own backend
    assert flagged["diffusers.device"] == {"value": "cpu", "source": "flag"}


def test_config_model_flag_follows_the_provider(invoke):
    diffusers = json.loads(invoke("config", "--provider", "diffusers", "--model", "m", "--json").stdout)
    openai = json.loads(invoke("config", "--provider", "openai", "--model", "m", "--json").stdout)
    assert diffusers["diffusers.model_id"]["value"] == "m" and "openai.model_id" not in diffusers
    assert openai["openai.model_id"]["value"] == "m"


def test_a_flag_of_another_backend_is_a_usage_error_naming_its_backends(invoke):
    result = invoke("config", "--provider", "openai", "--device", "cuda")
    assert result.exit_code == 2
    assert "--device is a setting of diffusers, not of the openai backend" in result.stderr


def test_config_redacts_keys_from_flag_and_env(invoke, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret-1234")
    for args in (("config",), ("config", "--json"), ("config", "--api-key", "sk-flag-secret-5678")):
        result = invoke(*args)
        assert result.exit_code == 0
        assert "secret" not in result.output
    shown = json.loads(invoke("config", "--json").stdout)
    assert shown["openai.api_key"] == {"value": "***", "source": "env OPENAI_API_KEY"}


def test_config_masks_a_password_in_the_base_url_from_flag_and_env(invoke, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://bob:env-hunter2@proxy.example/v1")
    flag_url = "https://alice:flag-hunter2@proxy.example/v1"
    for args in (("config",), ("config", "--json"), ("config", "--base-url", flag_url, "--json")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "hunter2" not in result.output
    shown = json.loads(invoke("config", "--json").stdout)
    assert shown["openai.base_url"]["value"] == "https://bob:***@proxy.example/v1"
    shown = json.loads(invoke("config", "--base-url", flag_url, "--json").stdout)
    assert shown["openai.base_url"] == {"value": "https://alice:***@proxy.example/v1", "source": "flag"}


def test_config_refuses_a_key_with_a_line_break_inside_without_showing_it(invoke):
    result = invoke("config", "--api-key", "sk-pasted\nsk-twice")
    assert result.exit_code == 1 and "api_key has whitespace" in result.stderr
    assert "sk-pasted" not in result.output and "Traceback" not in result.output


def test_config_rejects_a_malformed_env_value_in_one_line(invoke, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_TIMEOUT_S", "soon")
    result = invoke("config")
    assert result.exit_code == 1
    assert "ABSTRACTVISION_TIMEOUT_S='soon' is not a number" in result.stderr
    assert "Traceback" not in result.output
