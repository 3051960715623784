"""The ``batch`` method's parsing, ``$result`` references and response sections.

See docs/portal.md#batch.

``cmd`` is an object or an array of ``"method?query"`` strings, ``query`` decoded with PHP
``parse_str``. A parameter value may refer to an earlier command's output: a value that is
exactly ``$result[key][field]...`` becomes the referenced value itself (any type); a reference
embedded in a longer string is interpolated as PHP would print it. ``$result_error``,
``$result_total``, ``$result_next`` and ``$result_time`` work the same way. A reference that
points at nothing is left as it is.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.testing.state import PortalError
from bitrix_docgen_async.testing.wire import php_array

__all__ = ["BATCH_LIMIT", "BatchRun", "parse_commands", "parse_flag"]

#: Most commands one batch runs (docs/portal.md#batch).
BATCH_LIMIT = 50

_SECTIONS = ("result", "result_error", "result_total", "result_next", "result_time")
_REFERENCE = re.compile(
    r"\$(result_error|result_total|result_next|result_time|result)((?:\[[^\]]*\])+)"
)
_SEGMENT = re.compile(r"\[([^\]]*)\]")
_MISSING = object()


def parse_flag(value: Any) -> bool:
    """A PHP-ish boolean: ``true``, ``1``, ``"1"``, ``"Y"``, ``"true"`` are true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "y", "yes", "true", "on")
    return False


def parse_commands(params: dict[str, Any]) -> tuple[list[tuple[str, Any]], bool]:
    """The ``(key, "method?query")`` pairs of a batch, in order, and its ``halt`` flag."""
    cmd = params.get("cmd")
    if isinstance(cmd, list):
        commands = [(str(index), value) for index, value in enumerate(cmd)]
    elif isinstance(cmd, dict):
        commands = [(str(key), value) for key, value in cmd.items()]
    else:
        commands = []
    return commands, parse_flag(params.get("halt", False))


def _php_string(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, dict | list):
        return "Array"
    return str(value)


class BatchRun:
    """The five response sections of one batch, filled as its commands run."""

    def __init__(self) -> None:
        self._sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}

    def prepare(self, raw: Any) -> tuple[str, dict[str, Any]]:
        """Split ``"method?query"``, decode the query and resolve ``$result`` references."""
        text = raw if isinstance(raw, str) else ""
        method, _, query = text.partition("?")
        params = parse_str(query)
        params.pop("auth", None)
        resolved = self._resolve(params)
        return method, resolved if isinstance(resolved, dict) else {}

    def succeed(
        self, key: str, result: Any, total: int | None, next_: int | None, timing: Any
    ) -> None:
        """Record a command that succeeded."""
        self._sections["result"][key] = result
        if total is not None:
            self._sections["result_total"][key] = total
        if next_ is not None:
            self._sections["result_next"][key] = next_
        if timing is not None:
            self._sections["result_time"][key] = timing

    def fail(self, key: str, error: PortalError) -> None:
        """Record a command that failed (it gets no ``result_time`` entry)."""
        self._sections["result_error"][key] = error.payload()

    def sections(self) -> dict[str, Any]:
        """The batch ``result`` object; empty sections are JSON arrays, as PHP sends them."""
        return {name: php_array(items) for name, items in self._sections.items()}

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._resolve(item) for item in value]
        if not isinstance(value, str) or "$result" not in value:
            return value
        whole = _REFERENCE.fullmatch(value)
        if whole is not None:
            found = self._lookup(whole.group(1), whole.group(2))
            return value if found is _MISSING else copy.deepcopy(found)

        def interpolate(match: re.Match[str]) -> str:
            found = self._lookup(match.group(1), match.group(2))
            return match.group(0) if found is _MISSING else _php_string(found)

        return _REFERENCE.sub(interpolate, value)

    def _lookup(self, section: str, path: str) -> Any:
        node: Any = self._sections[section]
        for segment in _SEGMENT.findall(path):
            if isinstance(node, dict) and segment in node:
                node = node[segment]
            elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return _MISSING
        return node
