"""Settings precedence: explicit argument > environment variable > default."""

from __future__ import annotations

import pytest

from abstractvision.config import env_var_names, load_settings
from abstractvision.errors import BackendNotConfiguredError


def test_defaults():
    settings = load_settings(environ={})
    assert settings.timeout_s == 300.0 and settings.max_retries == 2
    assert settings.diffusers_allow_download is False
    assert settings.sdcpp_bin == "sd-cli"
    assert settings.source("timeout_s") == "default"


def test_environment_over_default_and_argument_over_environment():
    env = {"OPENAI_BASE_URL": "http://a/v1", "ABSTRACTVISION_BASE_URL": "http://b/v1", "ABSTRACTVISION_TIMEOUT_S": "12"}
    settings = load_settings(environ=env)
    assert settings.base_url == "http://b/v1" and settings.source("base_url") == "env:ABSTRACTVISION_BASE_URL"
    assert settings.timeout_s == 12.0
    explicit = load_settings(environ=env, base_url="http://c/v1", timeout_s=None)
    assert explicit.base_url == "http://c/v1" and explicit.source("base_url") == "argument"
    assert explicit.timeout_s == 12.0  # None counts as "not given"


def test_reads_os_environ_on_call(monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "yes")
    assert load_settings().diffusers_allow_download is True
    monkeypatch.setenv("ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "0")
    assert load_settings().diffusers_allow_download is False


@pytest.mark.parametrize(
    "var,value,match",
    [
        ("ABSTRACTVISION_TIMEOUT_S", "soon", "not a number"),
        ("ABSTRACTVISION_MAX_RETRIES", "2.5", "not an integer"),
        ("ABSTRACTVISION_MAX_RETRIES", "-1", "negative"),
        ("ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "maybe", "not a boolean"),
    ],
)
def test_bad_environment_values_name_the_variable(var, value, match):
    with pytest.raises(BackendNotConfiguredError, match=match) as info:
        load_settings(environ={var: value})
    assert var in str(info.value)


def test_secrets_are_redacted():
    settings = load_settings(environ={"OPENAI_API_KEY": "sk-secret-value"})
    assert settings.api_key == "sk-secret-value"
    assert "sk-secret-value" not in repr(settings)
    assert ("api_key", "***", "env:OPENAI_API_KEY") in settings.describe()


def test_an_api_key_is_stripped_from_the_environment_and_from_arguments():
    assert load_settings(environ={"OPENAI_API_KEY": "  sk-pasted\n"}).api_key == "sk-pasted"
    settings = load_settings(environ={"OPENAI_API_KEY": "sk-env"}, api_key="\tsk-flag \r\n")
    assert settings.api_key == "sk-flag" and settings.source("api_key") == "argument"
    blank = load_settings(environ={"OPENAI_API_KEY": "sk-env"}, api_key="   ")  # blank counts as not given
    assert blank.api_key == "sk-env" and blank.source("api_key") == "env:OPENAI_API_KEY"


@pytest.mark.parametrize("key", ["sk-abc\ndef", "sk-abc def", "sk-abc\x00", "sk-ab\u00e9c", "sk-abc\r\nX-Evil: 1"])
def test_an_api_key_with_whitespace_or_control_characters_inside_is_refused_without_showing_it(key):
    for attempt in (lambda: load_settings(environ={"OPENAI_API_KEY": key}), lambda: load_settings(api_key=key)):
        with pytest.raises(BackendNotConfiguredError, match="api_key|OPENAI_API_KEY") as info:
            attempt()
        assert "sk-ab" not in str(info.value) and "(it is not shown here)" in str(info.value)


def test_a_password_in_the_base_url_is_masked_in_repr_and_describe():
    url = "https://alice:hunter2@proxy.example/v1"
    for settings in (load_settings(environ={"OPENAI_BASE_URL": url}), load_settings(environ={}, base_url=url)):
        assert settings.base_url == url  # the real value is kept for the connection
        assert "hunter2" not in repr(settings)
        shown = dict((name, value) for name, value, _ in settings.describe())
        assert shown["base_url"] == "https://alice:***@proxy.example/v1"


def test_unknown_explicit_setting_is_a_type_error():
    with pytest.raises(TypeError, match="nope"):
        load_settings(environ={}, nope=1)


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


def test_env_var_names_lists_every_setting():
    names = env_var_names()
    assert names["api_key"][-1] == "OPENAI_API_KEY"
    assert "ABSTRACTVISION_SDCPP_BIN" in names["sdcpp_bin"]
