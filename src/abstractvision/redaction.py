"""Keeping secrets out of text a user can see: URLs with passwords, and known secret values.

Why one module: the transport's error messages, the configuration's ``repr`` and the CLI all show
URLs and messages that may carry a credential; each of them masks the same way by calling these two
functions. Pure standard library, so importing it costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

#: What a hidden secret is shown as.
MASK = "***"

#: Names (of headers, settings, metadata keys) whose values are credentials; token *counts* are not.
_SECRET_NAME = re.compile(
    r"api[-_]?key|auth(?!ors?\b)|passw(or)?d|secret|token(?!s\b|iz)|cookie|credential|signature", re.IGNORECASE
)

#: A URL inside free text (an error message): scheme, then everything up to a space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def is_secret_name(name: object) -> bool:
    """Whether a value called ``name`` (``api-key``, ``Authorization``, ``X-Auth-Token``...) is a credential."""
    return isinstance(name, str) and _SECRET_NAME.search(name) is not None


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part masked (``https://user:***@host/v1``).

    A URL without a password is returned unchanged; text that does not parse as a URL too.
    """
    if "@" not in url:  # the common case, and the hot one: no userinfo, nothing to parse
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def redact_urls_in(text: str) -> str:
    """``text`` with the password of every URL in it masked (for messages that quote URLs)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text) if "@" in text else text


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of ``url``'s ``user:password@`` part, as written and percent-decoded, for :func:`scrub`."""
    if "@" not in url:
        return ()
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    if not password:
        return ()
    return tuple(dict.fromkeys((password, unquote(password))))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty value of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


__all__ = ["MASK", "is_secret_name", "redact_url", "redact_urls_in", "scrub", "url_secrets"]
