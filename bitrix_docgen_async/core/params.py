"""Call parameters in their one canonical form, checked once before anything is queued.

Every call goes to the portal as a PHP query string built by
:func:`~bitrix_docgen_async.core.encoding.encode_query`: a lone call as an
``application/x-www-form-urlencoded`` body, a batched one as the query of its ``cmd`` entry, and
the portal reads both with PHP's ``parse_str`` (docs/portal.md#request-time-out,
docs/portal.md#batch). :func:`normalize_params`
turns what a caller passed into the plain values that encoder sends, and refuses what it cannot
send with an error naming the argument, so that a bad value fails where the call is made rather
than at send time. The rules (docs/portal.md#one-wire-form):

* ``None`` is not sent (PHP's ``http_build_query`` leaves ``null`` out); send ``""`` for an
  empty value.
* An empty mapping or sequence is not sent (``http_build_query`` leaves empty arrays out), nor
  one holding nothing but such values. A list item left out keeps its index taken, as in PHP:
  ``[1, None, 3]`` becomes ``{"0": 1, "2": 3}`` (sent as ``x[0]=1&x[2]=3``).
* ``True`` is sent as ``1``, ``False`` as ``0`` (``http_build_query``'s choice).
* Integers must fit PHP's 64-bit integer; floats must be finite (no NaN or infinity); text must
  be valid Unicode (no lone surrogate), since the portal reads UTF-8.
* A mapping of any kind (``MappingProxyType`` too) becomes a ``dict`` with ``str`` keys (an
  ``int`` key becomes its decimal string); a sequence other than ``str``/``bytes`` (a tuple, a
  ``range``) becomes a ``list``; ``int``/``float``/``str`` subclasses (enums) become the plain
  type.
* Anything else is refused: ``bytes`` (send files as base64 text), sets, dates, ``Decimal``,
  other objects. So is nesting deeper than PHP's ``max_input_nesting_level`` (64), which PHP
  would drop with its whole top-level variable, and a container that contains itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from bitrix_docgen_async.core.encoding import MAX_INPUT_NESTING_LEVEL, plain_key

__all__ = ["PHP_INT_MAX", "PHP_INT_MIN", "normalize_params", "with_auth_connector"]

#: PHP's ``PHP_INT_MAX`` and ``PHP_INT_MIN`` on the 64-bit builds Bitrix24 runs: the integers
#: the portal can hold. A larger id would be read as a float (and lose digits) or clamped.
PHP_INT_MAX: Final = 2**63 - 1
PHP_INT_MIN: Final = -(2**63)

_KEY_SHOWN: Final = 40


def with_auth_connector(
    params: Mapping[str, Any] | None, auth_connector: str | None
) -> Mapping[str, Any] | None:
    """``params`` with the application's ``auth_connector`` added, unless it has its own.

    Every call the application makes carries its source key, so that its own changes are not
    queued back to it as offline events (docs/portal.md#offline-events); a call's own value wins.
    """
    if auth_connector is None or (params is not None and "auth_connector" in params):
        return params
    return {**(params or {}), "auth_connector": auth_connector}


def normalize_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters of one call as they will be sent, or an error naming the bad argument.

    Args:
        params: the call's parameters (``None`` for none).

    Returns:
        A new ``dict`` of plain values (``dict``/``list``/``str``/``int``/``float``/``bool``),
        with ``None`` and empty containers left out; see the module docstring for every rule.
        :func:`~bitrix_docgen_async.core.encoding.encode_query` sends it as it is, and
        :func:`~bitrix_docgen_async.core.encoding.php_normalize` of it is what the portal gets.

    Raises:
        TypeError: ``params`` is not a mapping; a key is neither ``str`` nor ``int``; a value has
            a type the portal cannot be sent. The message names the argument, such as
            ``params['values']['Total']``.
        ValueError: NaN or an infinity, an integer outside PHP's 64-bit range, a lone surrogate,
            a key PHP would read differently (NUL, a ``[`` at the top level, a ``]`` below it),
            two keys that are the same for PHP (``1`` and ``"1"``), nesting deeper than
            :data:`~bitrix_docgen_async.core.encoding.MAX_INPUT_NESTING_LEVEL`, or a container
            that contains itself.
    """
    if params is None:
        return {}
    if params.__class__ is dict and all(
        key.__class__ is str
        and value.__class__ is int
        and PHP_INT_MIN <= value <= PHP_INT_MAX
        and plain_key(key)
        for key, value in params.items()
    ):
        # The commonest call, {"id": 61}: every rule below would keep it as it is.
        return dict(params)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    plain = _mapping(params, "params", 0, {id(params)})
    return plain if plain is not None else {}


def _mapping(value: Mapping[Any, Any], where: str, depth: int, active: set[int]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    seen: set[str] = set()
    for key, item in value.items():
        text = _key(key, where, depth)
        here = f"{where}[{_shown(text)}]"
        if text in seen:
            raise ValueError(f"{here}: two keys of {where} are this one key for PHP")
        seen.add(text)
        plain = _value(item, here, depth, active)
        if plain is not None:
            result[text] = plain
    return result


def _sequence(value: Sequence[Any], where: str, depth: int, active: set[int]) -> Any:
    kept: list[Any] = []
    indexes: list[int] = []
    for index, item in enumerate(value):
        plain = _value(item, f"{where}[{index}]", depth, active)
        if plain is not None:
            kept.append(plain)
            indexes.append(index)
    if len(kept) == len(value):
        return kept
    # PHP keeps the index of an item http_build_query left out: 0 and 2 stay 0 and 2.
    return {str(index): item for index, item in zip(indexes, kept, strict=True)}


def _value(value: Any, where: str, depth: int, active: set[int]) -> Any:
    """``value`` in its plain form, or ``None`` when nothing of it is sent."""
    if value is None:
        return None
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        number = int.__int__(value)
        if not PHP_INT_MIN <= number <= PHP_INT_MAX:
            raise ValueError(
                f"{where} is outside the portal's integer range (-2**63 to 2**63-1): "
                "the portal would not read it back as the same number"
            )
        return number
    if isinstance(value, float):
        real = float.__float__(value)
        if real != real or real in (float("inf"), float("-inf")):
            raise ValueError(f"{where} is NaN or an infinity, which the portal cannot receive")
        return real
    if isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | memoryview)
    ):
        if depth >= MAX_INPUT_NESTING_LEVEL:
            raise ValueError(
                f"{where} nests deeper than {MAX_INPUT_NESTING_LEVEL} levels, "
                "which the portal drops"
            )
        if id(value) in active:
            raise ValueError(f"{where} contains itself")
        active.add(id(value))
        try:
            if isinstance(value, Mapping):
                plain = _mapping(value, where, depth + 1, active)
            else:
                plain = _sequence(value, where, depth + 1, active)
        finally:
            active.discard(id(value))
        return plain or None
    binary = isinstance(value, bytes | bytearray | memoryview)
    hint = " (send file contents as base64 text)" if binary else ""
    raise TypeError(
        f"{where} is of type {type(value).__name__}, which cannot be sent: use str, int, float, "
        f"bool, None, a mapping or a sequence{hint}"
    )


def _text(value: str, where: str) -> str:
    text = str.__str__(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{where} holds a lone surrogate at index {exc.start}: not valid Unicode text"
            ) from None
    return text


def _key(key: Any, where: str, depth: int) -> str:
    if isinstance(key, str):
        text = _text(key, f"a key of {where}")
    elif isinstance(key, int) and not isinstance(key, bool):
        text = str(int.__int__(key))
    else:
        raise TypeError(f"{where}: key {_shown(key)} is a {type(key).__name__}, not a str or int")
    # PHP reads brackets in a key after decoding it (docs/portal.md#request-time-out), and cuts a
    # key at NUL:
    # such a key would reach the portal as some other key.
    if "\0" in text:
        raise ValueError(f"{where}[{_shown(text)}]: a key cannot contain NUL")
    if depth == 0 and "[" in text:
        raise ValueError(f"{where}[{_shown(text)}]: PHP would read the '[' as a bracket")
    if depth > 0 and "]" in text:
        raise ValueError(f"{where}[{_shown(text)}]: PHP would read the ']' as a bracket")
    return text


def _shown(key: object) -> str:
    shown = repr(key)
    return shown if len(shown) <= _KEY_SHOWN else shown[: _KEY_SHOWN - 4] + "...'"
