"""What the client knows about each REST method before it has seen one run.

Two facts matter for sending a command: whether it is safe to send again after an ambiguous
failure (a read is; ``document.add`` is not: a second one creates a second document), and a prior
guess of its execution time, used to size batches until the real cost has been measured from
``result_time`` (a ``document.add`` renders for seconds, a ``get`` takes milliseconds).
"""

from __future__ import annotations

import functools

import attrs

__all__ = ["MethodInfo", "method_info", "normalize_method"]


@attrs.frozen
class MethodInfo:
    """Attributes:
    idempotent: sending it twice has the effect of sending it once.
    prior_cost: seconds of execution assumed until measured.
    batchable: may run inside ``batch`` (file transfers may not, docs/portal.md#batch).
    measure_first: its prior may be well below what it really costs, so while one batch of it
        is in flight, unmeasured, no other goes (renders take 1-60 s by template; an unknown
        method could be anything). A method whose prior is an upper estimate sends on at once.
    """

    idempotent: bool
    prior_cost: float
    batchable: bool = True
    measure_first: bool = False


# Reads and writes of small records are short: the portal does not even book calls under about
# 0.1 s (docs/portal.md#how-batch-is-billed), so 0.05 s / 0.1 s are upper estimates and their first
# batches need not wait for a measurement. A prior is reserved out of the operating budget until
# the command's real duration comes back, so an estimate far too high holds the budget back
# for nothing: 1,000 writes at 0.5 s would reserve more than the whole 480 s.
_READ = MethodInfo(idempotent=True, prior_cost=0.05)
_WRITE = MethodInfo(idempotent=False, prior_cost=0.1)
#: Deleting a document spends about 1 to 2 s of operating in the docs' examples (as its add and
#: update do), so it keeps a prior of that size.
_DELETE = MethodInfo(idempotent=False, prior_cost=1.5)
#: Template uploads carry a .docx and may be checked by the portal: longer, not yet measured.
_UPLOAD = MethodInfo(idempotent=False, prior_cost=0.5, measure_first=True)
_RENDER = MethodInfo(idempotent=False, prior_cost=3.0, measure_first=True)  # renders a .docx
#: A method we know nothing about: assumed cheap (so it batches fully) but never retried after
#: an ambiguous failure; ``call(..., idempotent=True)`` says otherwise.
UNKNOWN = MethodInfo(idempotent=False, prior_cost=0.05, measure_first=True)

_PREFIX = "crm.documentgenerator."
_KNOWN: dict[str, MethodInfo] = {
    **{
        _PREFIX + name: _READ
        for name in (
            "document.get",
            "document.list",
            "document.getfields",
            "template.get",
            "template.list",
            "template.getfields",
            "numerator.get",
            "numerator.list",
        )
    },
    **{
        _PREFIX + name: _WRITE
        for name in (
            "document.enablepublicurl",
            "template.delete",
            "numerator.add",
            "numerator.update",
            "numerator.delete",
        )
    },
    _PREFIX + "document.delete": _DELETE,
    **{_PREFIX + name: _UPLOAD for name in ("template.add", "template.update")},
    **{_PREFIX + name: _RENDER for name in ("document.add", "document.update", "document.upload")},
    "event.get": _READ,
    "event.bind": _WRITE,
    "event.unbind": _WRITE,
}


def normalize_method(method: str) -> str:
    """The canonical form of a method name: Bitrix24 matches names case-insensitively.

    Raises:
        ValueError: the name is empty or could not be a REST method.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    return _normalized(method)


@functools.lru_cache(maxsize=1024)  # a program calls a handful of methods, again and again
def _normalized(method: str) -> str:
    name = method.strip()
    if name.endswith(".json"):
        name = name[: -len(".json")]
    if not name or any(ch in name for ch in "?&=/#[] ") or name.startswith("."):
        raise ValueError(f"not a REST method name: {method!r}")
    return name.lower()


def method_info(method: str) -> MethodInfo:
    """What is known of ``method`` (already normalised)."""
    return _KNOWN.get(method, UNKNOWN)
