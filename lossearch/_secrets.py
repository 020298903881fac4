"""Credentials kept out of everything lossearch shows or logs.

The bottom floor: no lossearch or third-party imports, so that opening a storage, printing
an error or naming a storage in a setting never loads MLflow (or anything else) for it.
"""

from __future__ import annotations

import re
from typing import Any

# The user-info of a URL: everything between "scheme://" and the *last* "@" on the line that
# a host (or a path: journal://:pw@//tmp/db) follows. SQLAlchemy reads a password up to the
# last "@", and redis-py and requests do too, so a password holding "@", ":", "/", "?", "#",
# "://", a quote or a space is masked whole (the greedy match backtracks to that last "@").
# A user name never runs into another URL: one with a space in it ("sqlite:///a.db or
# postgresql://u@h") takes no password starting "//". Where a later "@" on the line is no
# password's (an "@" in a query string, an e-mail address after a URL with a port) this masks
# more than the password: a shown message may lose a little, a secret is never shown.
_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)"
    r"(?P<userinfo>[^\s:]*:[^\r\n]*|(?:(?!://)[^\r\n:])*(?::(?!//)[^\r\n]*)?)@(?=[\w%\[/-])"
)
# A query parameter whose name says it holds a secret (libpq's password=, sslpassword=,
# token=, api_key=, aws_secret_access_key=, ...): its value is masked.
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][^=&;#\s]*(?:pass|pwd|secret|token|key|auth|credential)[^=&;#\s]*=)"
    r"[^&;#\s'\"]*",
    re.IGNORECASE,
)


def mask_credentials(text: Any) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``, an HTTP user
    name alone (usually a token: ``http://TOKEN@host``) -> ``http://***@host``, and
    ``...?password=secret`` (or ``token=``, ``api_key=``, ...) -> ``...?password=***``.

    Example:
        >>> mask_credentials("redis://:hunter2@127.0.0.1:6379/0")
        'redis://:***@127.0.0.1:6379/0'
        >>> mask_credentials("http://alice:p@ss/w:rd@127.0.0.1:5000")
        'http://alice:***@127.0.0.1:5000'
    """
    text = _CREDENTIALS.sub(_masked_userinfo, str(text))
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}***", text)


def _masked_userinfo(match: re.Match) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    if colon:
        return f"{match['scheme']}{user}:***@"
    # A user name alone: on HTTP usually a token (https://TOKEN@host); on a database or
    # Redis URL an account name, kept so that a printed sync-mlflow hint still works.
    token = match["scheme"].lower().rstrip(":/").split("+")[-1] in _TOKEN_SCHEMES
    return f"{match['scheme']}{'***' if token else user}@"


_TOKEN_SCHEMES = ("http", "https", "ws", "wss")


def one_line_reason(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, at most ``limit`` characters, credentials masked:
    how a failed trial's reason reads in the summary, MLflow and ``trials_dataframe()``."""
    text = mask_credentials(" ".join(f"{type(exc).__name__}: {exc}".split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
