"""Owner config keys (AbstractCore's ``vision_*``) over the environment: mapping, parsing, precedence, errors."""

from __future__ import annotations

import pytest

from abstractvision.errors import BackendNotConfiguredError
from abstractvision.integrations._abstractcore_config import owner_keys, resolve_backend_plan


def test_owner_keys_reach_the_settings_as_explicit_values():
    config = {
        "vision_backend": "sdcpp",
        "vision_sdcpp_bin": "/opt/sd-cli",
        "vision_sdcpp_model": "/models/sd15.safetensors",
        "vision_sdcpp_vae": "/models/vae.safetensors",
        "vision_sdcpp_llm_vision": "/models/mmproj.gguf",
        "vision_sdcpp_extra_args": "--threads 2",
        "vision_model_dir": "/models",
    }
    plan = resolve_backend_plan(config, environ={})
    assert plan.provider == "sdcpp"
    assert plan.resolved.value("sd_cli_path") == "/opt/sd-cli"
    assert plan.resolved.value("model") == "/models/sd15.safetensors"
    assert plan.resolved.value("vae") == "/models/vae.safetensors"
    assert plan.resolved.value("llm_vision") == "/models/mmproj.gguf"
    assert plan.resolved.build().extra_args == ("--threads", "2")
    assert plan.resolved.value("models_dir") == "/models"
    assert plan.resolved.source("model") == "argument"
    assert plan.model == "/models/sd15.safetensors"


def test_owner_keys_are_derived_from_the_declarations():
    """AbstractCore's historical keys keep working: each is the host variable's name, lowercased."""
    assert owner_keys("sdcpp")["vision_sdcpp_bin"].name == "sd_cli_path"
    assert owner_keys("sdcpp")["vision_model_dir"].name == "models_dir"
    assert owner_keys("diffusers")["vision_device"].name == "device"
    assert owner_keys("diffusers")["vision_torch_dtype"].name == "torch_dtype"
    assert owner_keys("diffusers")["vision_diffusers_cache_dir"].name == "cache_dir"
    assert owner_keys("openai")["vision_models_path"].name == "models_path"  # a deprecated variable's key
    assert {"vision_base_url", "vision_api_key", "vision_model_id", "vision_timeout_s"} <= set(owner_keys("openai"))


def test_env_shaped_strings_are_parsed_like_the_variables():
    plan = resolve_backend_plan(
        {"vision_backend": "diffusers", "vision_timeout_s": "30", "vision_allow_download": "1", "vision_device": "cpu"},
        environ={},
    )
    assert "timeout_s" not in plan.resolved.values  # a key the chosen backend does not have is left alone
    openai = resolve_backend_plan({"vision_base_url": "http://h/v1", "vision_timeout_s": "30"}, environ={})
    assert openai.resolved.value("timeout_s") == 30.0
    sdcpp = resolve_backend_plan({"vision_backend": "sdcpp", "vision_sdcpp_timeout_s": "45"}, environ={})
    assert sdcpp.resolved.value("timeout_s") == 45.0
    assert plan.resolved.value("allow_download") is True
    assert plan.resolved.value("device") == "cpu"


def test_a_bad_owner_value_names_the_owner_key():
    with pytest.raises(BackendNotConfiguredError, match="vision_timeout_s='soon' is not a number"):
        resolve_backend_plan({"vision_timeout_s": "soon"}, environ={})


def test_owner_config_beats_the_environment():
    environ = {
        "ABSTRACTVISION_BACKEND": "diffusers",
        "OPENAI_BASE_URL": "http://env:1/v1",
        "OPENAI_API_KEY": "sk-env",
        "ABSTRACTVISION_MODEL_ID": "env-model",
    }
    plan = resolve_backend_plan(
        {
            "vision_backend": "openai-compatible",
            "vision_base_url": "http://owner:2/v1",
            "vision_api_key": "sk-owner",
            "vision_model_id": "owner-model",
        },
        environ=environ,
    )
    assert plan.provider == "openai"
    assert plan.resolved.value("base_url") == "http://owner:2/v1"
    assert plan.resolved.value("api_key") == "sk-owner"
    assert plan.model == "owner-model"
    assert plan.resolved.source("model_id") == "argument"


def test_the_environment_fills_what_the_owner_left_out():
    environ = {
        "ABSTRACTCORE_VISION_BACKEND": "openai-compatible",
        "OPENAI_BASE_URL": "http://env:1/v1",
        "OPENAI_API_KEY": "sk-env",
        "ABSTRACTCORE_VISION_TIMEOUT_S": "12",
    }
    plan = resolve_backend_plan({"vision_model_id": "owner-model"}, environ=environ)
    assert plan.provider == "openai"
    assert plan.resolved.value("base_url") == "http://env:1/v1"
    assert plan.resolved.source("base_url") == "env:OPENAI_BASE_URL"
    assert plan.resolved.value("api_key") == "sk-env"
    assert plan.resolved.value("timeout_s") == 12.0
    assert plan.model == "owner-model"


@pytest.mark.parametrize("key", ["vision_backend", "vision_provider"])
def test_vision_provider_is_an_alias_of_vision_backend(key):
    plan = resolve_backend_plan({key: "diffusers"}, environ={"ABSTRACTVISION_PROVIDER": "sdcpp"})
    assert plan.provider == "diffusers"


def test_vision_backend_wins_over_its_alias():
    plan = resolve_backend_plan({"vision_backend": "sdcpp", "vision_provider": "diffusers"}, environ={})
    assert plan.provider == "sdcpp"


@pytest.mark.parametrize("unset", [None, "auto"])
def test_no_backend_means_the_configured_service_and_never_a_paid_api_by_surprise(unset):
    config = {} if unset is None else {"vision_backend": unset}
    with_url = resolve_backend_plan({**config, "vision_base_url": "http://127.0.0.1:9/v1"}, environ={})
    assert with_url.provider == "openai"
    assert with_url.resolved.value("base_url") == "http://127.0.0.1:9/v1" and "base_url" not in with_url.overrides
    with pytest.raises(BackendNotConfiguredError, match="vision_base_url"):
        resolve_backend_plan(config, environ={})


def test_naming_openai_without_a_base_url_means_openais_own_api():
    plan = resolve_backend_plan({"vision_backend": "openai"}, environ={"OPENAI_API_KEY": "sk-x"})
    assert plan.overrides == {"base_url": "https://api.openai.com/v1"}
    env_url = resolve_backend_plan({"vision_backend": "openai"}, environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert "base_url" not in env_url.overrides


def test_an_unknown_owner_backend_names_the_key_and_the_accepted_values():
    with pytest.raises(BackendNotConfiguredError) as info:
        resolve_backend_plan({"vision_backend": "mlx-gen"}, environ={})
    message = str(info.value)
    assert "vision_backend='mlx-gen'" in message
    assert "openai, openai-compatible, diffusers, sdcpp" in message


def test_an_unknown_environment_backend_names_the_variable():
    with pytest.raises(BackendNotConfiguredError, match="ABSTRACTCORE_VISION_BACKEND='dalle-local'"):
        resolve_backend_plan({}, environ={"ABSTRACTCORE_VISION_BACKEND": "dalle-local"})


def test_openai_compatible_without_a_base_url_says_what_to_set():
    with pytest.raises(BackendNotConfiguredError) as info:
        resolve_backend_plan({"vision_backend": "openai-compatible"}, environ={})
    message = str(info.value)
    assert "vision_base_url" in message and "OPENAI_BASE_URL" in message


def test_the_api_key_never_shows_in_the_plan_repr():
    plan = resolve_backend_plan({"vision_base_url": "http://127.0.0.1:9/v1", "vision_api_key": "sk-secret-123"})
    assert "sk-secret-123" not in repr(plan)


def test_abstractcore_server_variables_are_fallbacks_below_abstractvision_ones():
    environ = {
        "ABSTRACTCORE_VISION_SDCPP_VAE": "/core/vae.safetensors",
        "ABSTRACTCORE_VISION_DEVICE": "cpu",
        "ABSTRACTCORE_VISION_MODEL_DIR": "/core/models",
        "ABSTRACTVISION_SDCPP_LLM": "/av/llm.gguf",
        "ABSTRACTCORE_VISION_SDCPP_LLM": "/core/llm.gguf",
    }
    sdcpp = resolve_backend_plan({"vision_backend": "sdcpp"}, environ=environ).resolved
    assert sdcpp.value("vae") == "/core/vae.safetensors"
    assert sdcpp.value("models_dir") == "/core/models"
    assert sdcpp.value("llm") == "/av/llm.gguf"
    assert resolve_backend_plan({"vision_backend": "diffusers"}, environ=environ).resolved.value("device") == "cpu"
