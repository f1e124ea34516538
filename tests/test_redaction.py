"""Masking of URL passwords and known secrets (shared by the transport, the config and the CLI)."""

from __future__ import annotations

import pytest

from abstractvision.redaction import is_secret_name, redact_url, scrub, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@host/v1", "https://user:***@host/v1"),
        ("http://a:b@[::1]:8080/x?q=1", "http://a:***@[::1]:8080/x?q=1"),
        ("https://u:p%40ss@h/v1", "https://u:***@h/v1"),
        ("https://user@host/v1", "https://user@host/v1"),
        ("https://host:8080/v1", "https://host:8080/v1"),
        ("not a url @ all", "not a url @ all"),
    ],
)
def test_redact_url_masks_only_the_password(url, shown):
    assert redact_url(url) == shown


def test_url_secrets_and_scrub_cover_the_written_and_decoded_password():
    assert url_secrets("https://host/v1") == ()
    secrets = url_secrets("https://u:p%40ss@h/v1")
    assert secrets == ("p%40ss", "p@ss")
    assert scrub("sent p@ss and p%40ss with key sk-1", (*secrets, "sk-1", None, "")) == "sent *** and *** with key ***"


@pytest.mark.parametrize("name", ["api-key", "X-API-Key", "Authorization", "x-auth-token", "Cookie", "client_secret"])
def test_credential_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["User-Agent", "X-Relay", "OpenAI-Organization", "total_tokens", "tokenizer"])
def test_ordinary_names(name):
    assert not is_secret_name(name)
