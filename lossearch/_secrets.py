"""Credentials kept out of everything lossearch shows or logs.

The bottom floor: no lossearch or third-party imports, so that opening a storage, printing
an error or naming a storage in a setting never loads MLflow (or anything else) for it.
"""

from __future__ import annotations

import re
from typing import Any

_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@"
)
# A query parameter whose name says it holds a secret (libpq's password=, sslpassword=,
# token=, api_key=, aws_secret_access_key=, ...): its value is masked.
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][^=&;#\s]*(?:pass|pwd|secret|token|key|auth|credential)[^=&;#\s]*=)"
    r"[^&;#\s'\"]*",
    re.IGNORECASE,
)


def mask_credentials(text: Any) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``, and
    ``...?password=secret`` (or ``token=``, ``api_key=``, ...) -> ``...?password=***``.

    Example:
        >>> mask_credentials("redis://:hunter2@127.0.0.1:6379/0")
        'redis://:***@127.0.0.1:6379/0'
    """
    text = _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}***", text)
