"""What the command line reports as one line on stderr, and how secrets are kept out of it."""

from __future__ import annotations

import re

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CommandError",
    "UsageError",
    "redact",
]

#: Everything worked.
EXIT_OK = 0
#: The command ran, but some items (or the run itself) failed.
EXIT_FAILED = 1
#: The command could not run as given: bad arguments, missing webhook, refused credentials.
EXIT_USAGE = 2
#: The portal did not answer for ``--give-up-after`` seconds while requests were failing.
EXIT_UNREACHABLE = 3
#: Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_SIGINT = 130
#: Stopped by SIGTERM (128 + SIGTERM).
EXIT_SIGTERM = 143

#: ``/rest/{user}/{code}/``: the webhook code is the secret part of a webhook URL.
_WEBHOOK = re.compile(r"(/rest/\d+/)[^/\s?#'\"]+")
#: ``auth=``/``token=``/``access_token=``/``refresh_token=`` in a query string.
_QUERY_SECRET = re.compile(r"((?:^|[?&\s])(?:auth|token|access_token|refresh_token)=)[^&\s'\"]+")


class UsageError(Exception):
    """The command cannot run as given (exit code 2).

    Args:
        message: one line saying what is wrong.
        prog: the (sub)command it concerns, e.g. ``bitrix-docgen generate``.
    """

    def __init__(self, message: str, *, prog: str = "bitrix-docgen") -> None:
        super().__init__(message)
        self.prog = prog


class CommandError(Exception):
    """The command ran and failed as a whole (exit code 1); the message is one line."""


def redact(text: str) -> str:
    """``text`` with webhook codes and tokens replaced by ``***``, on one line.

    Every line the command line prints about an error goes through this, so that a webhook
    URL echoed by a parser or a library message cannot leak its code.
    """
    text = _WEBHOOK.sub(r"\1***", text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    return " ".join(text.split())
