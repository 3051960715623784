"""PHP query strings both ways: ``http_build_query`` for the client, ``parse_str`` for the portal.

Bitrix24 is PHP: it reads every form body and every batch ``cmd`` with ``parse_str`` semantics.
:func:`encode_query` writes what PHP's ``http_build_query($params)`` (``PHP_QUERY_RFC1738``)
writes, :func:`parse_str` reads a query string the way PHP 8's ``parse_str()`` does, and
:func:`php_normalize` says what PHP ends up holding after one goes through the other.

Choices where Python and PHP differ (the fuller rules are in each function's docstring):

* Bytes. A PHP string is bytes; a Python ``str`` is sent as UTF-8 and received bytes are decoded
  as UTF-8 with ``errors="surrogateescape"``: bytes that are not UTF-8 become lone surrogates
  U+DC80..U+DCFF rather than U+FFFD, so nothing is lost and :func:`encode_query` (which encodes
  with the same error handler) sends back the very same bytes.
* Floats. ``http_build_query`` prints a float as PHP's ``(string)$float`` does. With PHP's
  default ``precision=14`` that rounds to 14 significant digits; :func:`encode_query` uses the
  layout PHP prints under ``precision=-1`` instead: the shortest digits that read back as the same
  float (Python's ``repr`` digits) in PHP's format: ``1.0`` -> ``1``, ``0.1`` -> ``0.1``,
  ``1e17`` -> ``1.0E+17``, ``1.5e-07`` -> ``1.5E-7``, ``-0.0`` -> ``-0``, NaN -> ``NAN``,
  infinities -> ``INF``/``-INF``. No value is silently rounded.
* Keys. A key is a ``str`` or an ``int`` (not a ``bool``). PHP reads brackets in a key *after*
  decoding it, so a key holding a bracket would not come back as the same key: :func:`encode_query`
  refuses a top-level key containing ``[``, a nested key containing ``]``, and a key containing
  NUL (PHP cuts a key at NUL). Everything else is sent; the changes PHP still makes to such keys
  (see :func:`parse_str`) are what :func:`php_normalize` models.
* Limits. PHP's ``max_input_nesting_level`` (64) is honoured; ``max_input_vars`` (1000 by
  default, after which PHP stops reading with a warning) is not: :func:`parse_str` reads every
  pair.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

__all__ = [
    "MAX_INPUT_NESTING_LEVEL",
    "build_command",
    "encode_form_body",
    "encode_query",
    "parse_str",
    "php_list",
    "php_normalize",
]

#: PHP's default ``max_input_nesting_level``: a key with more ``[...]`` parts than this is refused
#: and takes its whole top-level variable with it.
MAX_INPUT_NESTING_LEVEL: Final = 64

_LONG_MAX: Final = 2**63 - 1
_LONG_MIN: Final = -(2**63)

# PHP's urlencode(): ASCII letters, digits and "-_." stay, a space becomes "+", every other byte
# is %XX with upper-case hex (so "~" and "*" are escaped, unlike Python's quote_plus and "~").
_UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_URLENCODED: Final[tuple[str, ...]] = tuple(
    chr(byte) if byte in _UNRESERVED else "+" if byte == 0x20 else f"%{byte:02X}"
    for byte in range(256)
)
_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_]+")


@functools.lru_cache(maxsize=4096)
def plain_key(key: str) -> bool:
    """Whether ``key`` is ASCII letters, digits and ``_`` only (``urlencode`` leaves it as it is).

    Cached: the same few parameter names (``id``, a batch's ``c0``...) come with every call.
    """
    return _PLAIN_KEY.fullmatch(key) is not None


_PHP_INT: Final = re.compile(r"-?(?:0|[1-9][0-9]{0,18})")
# C isspace() in the "C" locale: what PHP skips once after "[" when it looks for "[]".
_C_SPACE: Final = frozenset(" \t\n\v\f\r")
_BASE_MANGLE: Final = str.maketrans({" ": "_", ".": "_"})
_TAIL_MANGLE: Final = str.maketrans({" ": "_", ".": "_", "[": "_"})
_COOKIE_PREFIXES: Final = ("__Host-", "__Secure-")


def encode_query(params: Mapping[str, Any]) -> str:
    """Build a query string exactly as PHP's ``http_build_query($params)`` would (RFC 1738).

    Pairs are joined by ``&`` in the mappings' own order. A mapping, list or tuple nests: its
    entries become bracketed keys, ``fields[PHONE][0][VALUE]=...``, list items keyed by their
    index (an omitted item keeps its index taken). Keys and values are url-encoded like PHP's
    ``urlencode`` (brackets included: ``%5B``/``%5D``). Values: ``True`` -> ``1``,
    ``False`` -> ``0``, ``int`` -> decimal, ``float`` -> see the module docstring, ``str`` ->
    its UTF-8 bytes; ``None`` and empty containers are left out, and so is a container with
    nothing left to send.

    Args:
        params: the parameters; keys are ``str`` or ``int``.

    Returns:
        The query string, without a leading ``?`` (``""`` when nothing is sent).

    Raises:
        TypeError: ``params`` is not a mapping, or a key or a value has a type PHP cannot be
            sent (``bytes``, sets, other objects); the message names the key path.
        ValueError: a key PHP cannot read back (see the module docstring), a string with a lone
            surrogate that has no byte form, or a container that contains itself.
    """
    if params.__class__ is dict:
        flat = _flat_query(params)
        if flat is not None:
            return flat
    encoded: dict[str, str] = {}

    def key_part(text: str) -> str:
        part = encoded.get(text)
        if part is None:
            part = encoded[text] = _urlencode(_utf8(text, text))
        return part

    pairs = []
    for path, value in _leaves(params):
        name = key_part(path[0])
        if len(path) > 1:
            name += "".join(["%5B" + key_part(part) + "%5D" for part in path[1:]])
        pairs.append(name + "=" + _urlencode(_utf8(value, path)))
    return "&".join(pairs)


def _flat_query(params: dict[Any, Any]) -> str | None:
    """The query of the commonest shapes, else ``None`` (the general path then decides).

    Plain keys (``urlencode`` leaves ASCII letters, digits and ``_`` as they are) with ints,
    ASCII strings, or one level of such pairs (a ``batch`` body's ``cmd[c0]=...``): each pair is
    sent as the general path would send it, without walking a tree. A ``{"id": 61}`` call and a
    50-command ``batch`` body are both built here.
    """
    pairs = []
    for key, value in params.items():
        if key.__class__ is not str or not plain_key(key):
            return None
        kind = value.__class__
        if kind is int:
            pairs.append(f"{key}={value}")
        elif kind is str and value.isascii():
            pairs.append(f"{key}={value.translate(_URLENCODED)}")
        elif kind is dict and value:
            for inner, item in value.items():
                if inner.__class__ is not str or not plain_key(inner):
                    return None
                if item.__class__ is int:
                    pairs.append(f"{key}%5B{inner}%5D={item}")
                elif item.__class__ is str and item.isascii():
                    pairs.append(f"{key}%5B{inner}%5D={item.translate(_URLENCODED)}")
                else:
                    return None
        else:
            return None
    return "&".join(pairs)


def build_command(method: str, params: Mapping[str, Any] | None) -> str:
    """A Bitrix24 batch ``cmd`` string: ``"method?query"``, just ``"method"`` if the query is empty.

    Args:
        method: the REST method, e.g. ``"crm.deal.get"``.
        params: its parameters, encoded with :func:`encode_query`.

    Returns:
        The command string, e.g. ``"user.get?ID=1"``.

    Raises:
        ValueError: ``method`` is empty or contains ``?``; see also :func:`encode_query`.
    """
    if not method or "?" in method:
        raise ValueError(f"not a method name: {method!r}")
    query = encode_query(params) if params else ""
    return f"{method}?{query}" if query else method


def encode_form_body(params: Mapping[str, Any]) -> bytes:
    """An ``application/x-www-form-urlencoded`` request body holding ``params``.

    The same encoder as a batch command's query (:func:`encode_query`), so a call sent alone
    and the same call sent inside a ``batch`` reach the portal's ``parse_str`` as the same
    variables (docs/portal.md#one-wire-form).

    Args:
        params: the parameters, best first put through
            :func:`~bitrix_docgen_async.core.params.normalize_params`.

    Returns:
        The body (ASCII: every byte outside ``[A-Za-z0-9._-]`` is percent-encoded).

    Raises:
        TypeError: as :func:`encode_query`.
        ValueError: as :func:`encode_query`.
    """
    return encode_query(params).encode("ascii")


def parse_str(query: str | bytes) -> dict[str, Any]:
    """Decode a query string exactly as PHP's ``parse_str()`` would (PHP 8).

    The rules, in PHP's order:

    * The input stops at its first NUL byte. It splits on ``&``; empty parts are skipped; a part
      splits at its first ``=`` (no ``=``: the value is ``""``).
    * Key and value are url-decoded: ``+`` is a space, ``%XX`` a byte; a ``%`` without two hex
      digits after it stays as it is. The key is cut at its first NUL. Bytes become text as
      UTF-8 with ``errors="surrogateescape"`` (never raises).
    * Leading spaces of the key are dropped. Its base name is the part before the first ``[``,
      with ``" "`` and ``"."`` turned into ``"_"``; a pair whose base name is empty is dropped,
      and so is one whose base name only starts with ``__Host-`` or ``__Secure-`` because of
      that mangling (PHP's cookie-prefix guard, also applied by ``parse_str``).
    * Each ``[...]`` then is one level down; ``[]`` (or ``[`` + one whitespace character +
      ``]``) appends at the next integer key: the largest integer key that array has held + 1,
      or 0. Parsing stops at the first character after a ``]`` that is not ``[``; the rest is
      ignored. A ``[`` with no ``]`` after it ends the key there; if it is the first ``[``,
      it and the rest become part of the base name, with ``" "``, ``"."`` and ``"["`` turned
      into ``"_"`` (``a[b.c`` -> ``a_b_c``).
    * More than :data:`MAX_INPUT_NESTING_LEVEL` bracket levels: the pair is dropped and its
      whole top-level variable is deleted (a later pair may create it again).
    * Writing follows PHP arrays: a later write to the same path wins, a scalar met on the way
      down is replaced by an array, and a key keeps its first position.

    Args:
        query: the query string, without a leading ``?``. ``bytes`` are read as PHP reads them;
            a ``str`` is first encoded as UTF-8 (``surrogateescape``, so text decoded that way
            gives back its bytes; a surrogate outside U+DC80..U+DCFF is encoded as itself with
            ``surrogatepass``).

    Returns:
        The variables: values are ``str``, arrays are ``dict[str, Any]`` in PHP's order, integer
        keys as their decimal strings (``"0"``); :func:`php_list` turns a list-like one into a
        list.
    """
    data = bytes(query) if not isinstance(query, str) else _query_bytes(query)
    end = data.find(b"\0")
    if end >= 0:
        data = data[:end]
    arrays = _PhpArrays()
    for part in data.split(b"&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition(b"=")
        key = _urldecode(raw_key)
        end = key.find(b"\0")
        if end >= 0:
            key = key[:end]
        arrays.register(
            key.decode("utf-8", "surrogateescape"),
            _urldecode(raw_value).decode("utf-8", "surrogateescape"),
        )
    return arrays.result


def php_normalize(params: Mapping[str, Any]) -> dict[str, Any]:
    """What ``parse_str(encode_query(params))`` must give: ``params`` as PHP would see them.

    Computed from the structure, not through a query string: values become what
    :func:`encode_query` sends (``"1"``/``"0"`` for booleans, numbers as their strings, strings
    through their UTF-8 bytes), lists and tuples become dicts keyed ``"0"``, ``"1"``, ... by
    index, ``None`` and containers with nothing to send disappear, keys become ``str``; then each
    value is written where PHP would put it: a top-level key loses its leading spaces and has
    ``" "``/``"."`` turned into ``"_"`` (and is dropped if that leaves it empty or only then
    makes it start with ``__Host-``/``__Secure-``), keys that collide merge as in PHP, a nested
    key ``""`` (or one whitespace character) appends at the next integer key, and a value more
    than :data:`MAX_INPUT_NESTING_LEVEL` levels down deletes its top-level variable.

    Args:
        params: parameters as given to :func:`encode_query`.

    Returns:
        The parameters as :func:`parse_str` decodes them from :func:`encode_query`'s output.

    Raises:
        TypeError: as :func:`encode_query`.
        ValueError: as :func:`encode_query`.
    """
    arrays = _PhpArrays()
    for path, value in _leaves(params):
        arrays.assign(
            _php_text(path[0], path[0]),
            [_php_text(part, path) for part in path[1:]],
            _php_text(value, path),
        )
    return arrays.result


def php_list(value: Any) -> list[Any]:
    """A :func:`parse_str` array keyed ``"0"``, ``"1"``, ... (in that order) as a list.

    Args:
        value: a list (returned as it is) or a dict from :func:`parse_str`, such as
            ``parse_str("entityTypeId[0]=2")["entityTypeId"]``.

    Returns:
        The values in order (``[]`` for an empty dict).

    Raises:
        ValueError: ``value`` is neither a list nor a mapping whose keys are exactly ``"0"``,
            ``"1"``, ... in order.
    """
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        if all(key == str(index) for index, key in enumerate(value)):
            return list(value.values())
        raise ValueError(f"not a PHP list: keys {list(value)[:10]!r}")
    raise ValueError(f"not a PHP list: {type(value).__name__}")


# -- encoding -------------------------------------------------------------------------------------


def _leaves(params: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every value that is sent, in order: its key path and its text (not yet url-encoded)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    return _walk(params.items(), (), {id(params)})


def _walk(
    items: Any, path: tuple[str, ...], active: set[int]
) -> Iterator[tuple[tuple[str, ...], str]]:
    for key, value in items:
        here = (*path, _key_text(key, path))
        if value is None:
            continue
        if isinstance(value, Mapping | list | tuple):
            if id(value) in active:
                raise ValueError(f"{_path_text(here)}: the value contains itself")
            active.add(id(value))
            children = value.items() if isinstance(value, Mapping) else enumerate(value)
            yield from _walk(children, here, active)
            active.discard(id(value))
        else:
            yield here, _scalar_text(value, here)


def _key_text(key: Any, path: tuple[str, ...]) -> str:
    if isinstance(key, str):
        text = str.__str__(key)
    elif isinstance(key, int) and not isinstance(key, bool):
        text = str(int(key))
    else:
        where = _path_text(path) if path else "top level"
        raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}, not a str or int")
    if "\0" in text:
        raise ValueError(f"{_path_text((*path, text))}: a key cannot contain NUL")
    if not path and "[" in text:
        raise ValueError(f"top-level key {text!r}: PHP would read its '[' as a bracket")
    if path and "]" in text:
        raise ValueError(f"{_path_text((*path, text))}: PHP would read its ']' as a bracket")
    return text


def _scalar_text(value: Any, path: tuple[str, ...]) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _php_float(float(value))
    raise TypeError(
        f"{_path_text(path)}: cannot send a {type(value).__name__} "
        "(use str, int, float, bool, None, a mapping, a list or a tuple)"
    )


def _php_float(value: float) -> str:
    """PHP's ``(string)$float`` under ``precision=-1``: shortest round-trip digits, PHP layout."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    # value == 0.DIGITS * 10**point, as dtoa reports it
    point = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    if not digits:
        return sign + "0"
    if point < -3 or point > 17:
        power = point - 1
        return f"{sign}{digits[0]}.{digits[1:] or '0'}E{'-' if power < 0 else '+'}{abs(power)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    fraction = digits[point:]
    return sign + digits[:point].ljust(point, "0") + ("." + fraction if fraction else "")


def _utf8(text: str, path: tuple[str, ...] | str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        where = _path_text(path) if isinstance(path, tuple) else f"key {path!r}"
        raise ValueError(f"{where}: {exc.reason} at index {exc.start}") from exc


def _php_text(text: str, path: tuple[str, ...] | str) -> str:
    """``text`` as PHP gets it back: through its UTF-8 bytes (joins escaped surrogates)."""
    if text.isascii():
        return text
    return _utf8(text, path).decode("utf-8", "surrogateescape")


def _urlencode(data: bytes) -> str:
    # Latin-1 maps each byte to the code point of its value, which indexes the table.
    return data.decode("latin-1").translate(_URLENCODED)


def _path_text(path: tuple[str, ...]) -> str:
    return path[0] + "".join(f"[{part}]" for part in path[1:])


# -- decoding -------------------------------------------------------------------------------------


def _query_bytes(query: str) -> bytes:
    try:
        return query.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return query.encode("utf-8", "surrogatepass")


def _urldecode(data: bytes) -> bytes:
    """PHP's ``php_url_decode``: ``+`` -> space, ``%XX`` -> byte, a bad escape kept as is."""
    if b"+" in data:
        data = data.replace(b"+", b" ")
    if b"%" in data:
        data = _ESCAPE.sub(lambda match: bytes((int(match[1], 16),)), data)
    return data


def _php_int(key: str) -> int | None:
    """The integer PHP stores a numeric-string array key as (``"5"`` -> 5, not ``"05"``)."""
    if not key or key == "-0" or not _PHP_INT.fullmatch(key):
        return None
    number = int(key)
    return number if _LONG_MIN <= number <= _LONG_MAX else None


class _PhpArrays:
    """PHP's ``php_register_variable_ex`` over nested dicts: where each pair is written."""

    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        # PHP's nNextFreeElement of every array made here, by id; the list keeps each array
        # alive so that no id is reused while this object lives.
        self._next_free: dict[int, int] = {}
        self._arrays: list[dict[str, Any]] = [self.result]

    def register(self, name: str, value: str) -> None:
        """Write a decoded ``key=value`` pair as ``parse_str`` does."""
        name = name.lstrip(" ")
        bracket = name.find("[")
        base = (name if bracket < 0 else name[:bracket]).translate(_BASE_MANGLE)
        if not self._accepts(base, name):
            return
        segments: list[str | None] = []
        position = bracket
        while position >= 0:
            if len(segments) >= MAX_INPUT_NESTING_LEVEL:
                self.result.pop(base, None)
                return
            start = position + 1
            probe = start + 1 if start < len(name) and name[start] in _C_SPACE else start
            if probe < len(name) and name[probe] == "]":
                close = probe
                segments.append(None)
            else:
                close = name.find("]", probe)
                if close < 0:
                    if not segments:
                        base += "_" + name[start:].translate(_TAIL_MANGLE)
                    break
                segments.append(name[start:close])
            position = close + 1
            if position >= len(name) or name[position] != "[":
                break
        self._store(base, segments, value)

    def assign(self, top: str, path: list[str], value: str) -> None:
        """Write a value whose key path is known (no brackets in the keys) as PHP would."""
        name = top.lstrip(" ")
        base = name.translate(_BASE_MANGLE)
        if not self._accepts(base, name):
            return
        if len(path) > MAX_INPUT_NESTING_LEVEL:
            self.result.pop(base, None)
            return
        segments: list[str | None] = [
            None if not part or (len(part) == 1 and part in _C_SPACE) else part for part in path
        ]
        self._store(base, segments, value)

    @staticmethod
    def _accepts(base: str, name: str) -> bool:
        if not base:
            return False
        return not any(
            base.startswith(prefix) and not name.startswith(prefix) for prefix in _COOKIE_PREFIXES
        )

    def _store(self, base: str, segments: list[str | None], value: str) -> None:
        table = self.result
        key: str | None = base
        for segment in segments:
            if key is None:
                child: dict[str, Any] = self._new_array()
                if not self._append(table, child):
                    return
            else:
                existing = table.get(key)
                if isinstance(existing, dict):
                    child = existing
                else:
                    child = self._new_array()
                    self._set(table, key, child)
            table = child
            key = segment
        if key is None:
            self._append(table, value)
        else:
            self._set(table, key, value)

    def _new_array(self) -> dict[str, Any]:
        array: dict[str, Any] = {}
        self._arrays.append(array)
        return array

    def _set(self, table: dict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        index = _php_int(key)
        if index is not None:
            self._advance(table, index)

    def _append(self, table: dict[str, Any], value: Any) -> bool:
        index = self._next_free.get(id(table), 0)
        key = str(index)
        if key in table:  # only when the next free key would pass PHP_INT_MAX
            return False
        table[key] = value
        self._advance(table, index)
        return True

    def _advance(self, table: dict[str, Any], index: int) -> None:
        current = self._next_free.get(id(table))
        if current is None or index >= current:
            self._next_free[id(table)] = min(index + 1, _LONG_MAX)
