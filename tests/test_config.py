"""Settings: declared once on the config they configure, resolved by one rule (argument > environment > default)."""

from __future__ import annotations

import dataclasses

import pytest

from abstractvision.backends.huggingface_diffusers import HuggingFaceDiffusersBackendConfig
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppBackendConfig
from abstractvision.config import declared_settings, load_settings, resolve, setting
from abstractvision.errors import BackendNotConfiguredError

OPENAI = OpenAICompatibleBackendConfig


def test_defaults_come_from_the_config_and_say_so():
    resolved = resolve(OPENAI, environ={})
    assert resolved.values == {} and resolved.value("timeout_s") == 300.0 and resolved.value("max_retries") == 2
    assert resolved.source("timeout_s") == "default"
    assert resolve(HuggingFaceDiffusersBackendConfig, environ={}).value("allow_download") is False
    assert resolve(StableDiffusionCppBackendConfig, environ={}).value("sd_cli_path") == "sd-cli"


def test_environment_over_default_and_argument_over_environment():
    env = {"OPENAI_BASE_URL": "http://a/v1", "ABSTRACTVISION_BASE_URL": "http://b/v1", "ABSTRACTVISION_TIMEOUT_S": "12"}
    resolved = resolve(OPENAI, environ=env)
    assert resolved.value("base_url") == "http://b/v1" and resolved.source("base_url") == "env:ABSTRACTVISION_BASE_URL"
    assert resolved.value("timeout_s") == 12.0
    explicit = resolve(OPENAI, environ=env, base_url="http://c/v1", timeout_s=None)
    assert explicit.value("base_url") == "http://c/v1" and explicit.source("base_url") == "argument"
    assert explicit.value("timeout_s") == 12.0  # None counts as "not given"
    config = explicit.build()
    assert (config.base_url, config.timeout_s) == ("http://c/v1", 12.0)


def test_a_backend_specific_variable_beats_the_general_one_for_every_consumer():
    """The drift the declarations end: one order of variables, read by one function."""
    env = {"ABSTRACTVISION_MODEL_ID": "general", "ABSTRACTVISION_DIFFUSERS_MODEL": "specific"}
    assert resolve(HuggingFaceDiffusersBackendConfig, environ=env).build().model_id == "specific"
    from abstractvision.integrations._abstractcore_config import resolve_backend_plan

    plan = resolve_backend_plan({"vision_backend": "diffusers"}, environ=env)
    assert plan.model == "specific" and plan.resolved.build().model_id == "specific"


def test_reads_os_environ_on_call(monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "yes")
    assert resolve(HuggingFaceDiffusersBackendConfig).value("allow_download") is True
    monkeypatch.setenv("ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "0")
    assert resolve(HuggingFaceDiffusersBackendConfig).value("allow_download") is False


@pytest.mark.parametrize(
    "config,var,value,match",
    [
        (OPENAI, "ABSTRACTVISION_TIMEOUT_S", "soon", "not a number"),
        (OPENAI, "ABSTRACTVISION_MAX_RETRIES", "2.5", "not an integer"),
        (OPENAI, "ABSTRACTVISION_MAX_RETRIES", "-1", "negative"),
        (HuggingFaceDiffusersBackendConfig, "ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "maybe", "not a boolean"),
    ],
)
def test_bad_environment_values_name_the_variable(config, var, value, match):
    with pytest.raises(BackendNotConfiguredError, match=match) as info:
        resolve(config, environ={var: value})
    assert var in str(info.value)


def test_secrets_are_redacted():
    resolved = resolve(OPENAI, environ={"OPENAI_API_KEY": "sk-secret-value"})
    assert resolved.value("api_key") == "sk-secret-value"
    assert "sk-secret-value" not in repr(resolved)
    assert ("api_key", "***", "env:OPENAI_API_KEY") in resolved.describe()


def test_an_api_key_is_stripped_from_the_environment_and_from_arguments():
    assert resolve(OPENAI, environ={"OPENAI_API_KEY": "  sk-pasted\n"}).value("api_key") == "sk-pasted"
    resolved = resolve(OPENAI, environ={"OPENAI_API_KEY": "sk-env"}, api_key="\tsk-flag \r\n")
    assert resolved.value("api_key") == "sk-flag" and resolved.source("api_key") == "argument"
    blank = resolve(OPENAI, environ={"OPENAI_API_KEY": "sk-env"}, api_key="   ")  # blank counts as not given
    assert blank.value("api_key") == "sk-env" and blank.source("api_key") == "env:OPENAI_API_KEY"


@pytest.mark.parametrize("key", ["sk-abc\ndef", "sk-abc def", "sk-abc\x00", "sk-ab\u00e9c", "sk-abc\r\nX-Evil: 1"])
def test_an_api_key_with_whitespace_or_control_characters_inside_is_refused_without_showing_it(key):
    attempts = (lambda: resolve(OPENAI, environ={"OPENAI_API_KEY": key}), lambda: resolve(OPENAI, {}, api_key=key))
    for attempt in attempts:
        with pytest.raises(BackendNotConfiguredError, match="api_key|OPENAI_API_KEY") as info:
            attempt()
        assert "sk-ab" not in str(info.value) and "(it is not shown here)" in str(info.value)


def test_a_password_in_the_base_url_is_masked_in_repr_and_describe():
    url = "https://alice:hunter2@proxy.example/v1"
    for resolved in (resolve(OPENAI, environ={"OPENAI_BASE_URL": url}), resolve(OPENAI, environ={}, base_url=url)):
        assert resolved.value("base_url") == url  # the real value is kept for the connection
        assert "hunter2" not in repr(resolved)
        shown = dict((name, value) for name, value, _ in resolved.describe())
        assert shown["base_url"] == "https://alice:***@proxy.example/v1"


def test_unknown_explicit_setting_is_a_type_error():
    with pytest.raises(TypeError, match="nope"):
        resolve(OPENAI, environ={}, nope=1)
    with pytest.raises(TypeError, match="nope"):
        load_settings(environ={}, nope=1)


def test_a_deprecated_variable_still_works_with_a_warning_naming_its_successor():
    with pytest.warns(FutureWarning, match="ABSTRACTVISION_OPENAI_MODELS_PATH"):
        resolved = resolve(OPENAI, environ={"ABSTRACTVISION_MODELS_PATH": "/catalog"})
    assert resolved.value("models_path") == "/catalog"
    new_and_old = {"ABSTRACTVISION_OPENAI_MODELS_PATH": "/new", "ABSTRACTVISION_MODELS_PATH": "/old"}
    assert resolve(OPENAI, environ=new_and_old).value("models_path") == "/new"


def test_general_settings_are_declared_the_same_way():
    settings = load_settings(environ={"ABSTRACTVISION_BACKEND": "sdcpp"})
    assert settings.provider == "sdcpp" and settings.source("provider") == "env:ABSTRACTVISION_BACKEND"
    assert load_settings(environ={"ABSTRACTVISION_BACKEND": "sdcpp"}, provider="openai").provider == "openai"


def test_a_plugin_config_is_read_by_the_same_rule():
    @dataclasses.dataclass(frozen=True)
    class PluginConfig:
        model_id: str | None = setting(env="MYPLUGIN_MODEL", flag="--model", help="The model.")
        temperature: float = setting(0.5, env="MYPLUGIN_TEMPERATURE", help="How hot.")
        verbose: bool = setting(False, env="MYPLUGIN_VERBOSE", help="Say more.")

    resolved = resolve(PluginConfig, environ={"MYPLUGIN_TEMPERATURE": "0.9", "MYPLUGIN_VERBOSE": "yes"})
    assert resolved.build() == PluginConfig(model_id=None, temperature=0.9, verbose=True)
    owner_keys = [s.owner_key for s in declared_settings(PluginConfig)]
    assert owner_keys == ["vision_model_id", "vision_temperature", "vision_verbose"]


def test_every_declared_setting_has_a_variable_a_flag_and_help():
    for config in (OPENAI, HuggingFaceDiffusersBackendConfig, StableDiffusionCppBackendConfig):
        for declared in declared_settings(config):
            assert declared.spec.env and declared.spec.help.endswith(".") and declared.flag.startswith("--")


def test_only_config_reads_the_environment():
    from pathlib import Path

    import abstractvision

    root = Path(abstractvision.__file__).parent
    readers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "os.environ" in p.read_text() or "getenv" in p.read_text()
    )
    assert readers == ["config.py"]
