"""The one place that knows how the portal spells things: wire JSON <-> typed models.

Pure (no I/O). The quirks read here and nowhere else (docs/portal.md#wire-quirks): camelCase names,
with a few that are not the field's camelCase (``createTime``, a template's ``download`` and
``entityTypeId``) and snake_case in ``event.get``; ids as ints or digit strings (``61`` from
``add``, ``"61"`` from ``get``); flags as JSON bools, ``"Y"``/``"N"``, ``"1"``/``"0"``, ``1``/``0``
or ``"true"``/``"false"``, anything else an error (cattrs' default would make ``"N"`` true);
ISO 8601 times with an offset; ``""``/``null`` for no number, flag, time or URL; ``[]`` for an
empty object (PHP); string lists sent as a list or as an object (``{"UA": "UA"}``);
``template.list`` rows keyed by id; a numerator's settings under the generator's class name.

:data:`converter` ignores unknown keys (production); :data:`strict_converter` rejects them
(contract tests). :func:`structure` and friends raise
:class:`~bitrix_docgen_async.errors.ResponseError` with cattrs' ``transform_error`` lines, which
name paths and expected types but never quote a value (values may hold ``*Machine`` URLs).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from operator import eq
from typing import Any, Final, TypeVar, get_args

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

from bitrix_docgen_async.errors import ResponseError
from bitrix_docgen_async.models.common import EntityType
from bitrix_docgen_async.models.documents import Document, FieldDescription, ProductsSummary
from bitrix_docgen_async.models.events import DocumentEventType, EventBinding
from bitrix_docgen_async.models.numerators import Numerator, SequentSettings
from bitrix_docgen_async.models.templates import Template

__all__ = [
    "SEQUENT_GENERATOR",
    "converter",
    "strict_converter",
    "structure",
    "structure_fields",
    "structure_templates",
    "unstructure_params",
]

T = TypeVar("T")

#: The key of the sequential number generator in a numerator's ``settings``.
SEQUENT_GENERATOR: Final = "Bitrix_Main_Numerator_Generator_SequentNumberGenerator"

# Keys added to a wire object before it is structured: a field's code comes from the key of its
# description, a numerator's sequent settings from inside its ``settings``.
_CODE_KEY: Final = "\x00code"
_SEQUENT_KEY: Final = "\x00sequent"

# Wire names that are not the camelCase of the field name.
_TIMES: Final = {"created_time": "createTime", "updated_time": "updateTime"}
_RENAMES: Final[Mapping[type, Mapping[str, str]]] = {
    Document: _TIMES,
    Template: {"download_url": "download", "entity_type_ids": "entityTypeId", **_TIMES},
    FieldDescription: {"code": _CODE_KEY},
    Numerator: {"sequent": _SEQUENT_KEY},
    EventBinding: {"auth_type": "auth_type"},
}
_MODELS: Final = (*_RENAMES, ProductsSummary, SequentSettings)
# Model fields that the client keeps for itself: never read from or written to the wire.
_LOCAL: Final = frozenset({"pdf_since"})
# Fields named like this hold URLs, for which the portal sends "" until there is one.
_URL_SUFFIXES: Final = ("_url", "_machine")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_FLAGS: Final = {"y": True, "1": True, "true": True, "n": False, "0": False, "false": False}


class _BadValue(ValueError):
    """A wire value of the wrong form; the message says what was expected, never the value."""


def _describe(exc: BaseException, type_: Any) -> str:
    return str(exc) if isinstance(exc, _BadValue) else format_exception(exc, type_)


def _wire_name(cls: type, name: str) -> str:
    head, *rest = name.split("_")
    return _RENAMES.get(cls, {}).get(name, head + "".join(part.capitalize() for part in rest))


# --- value hooks (their messages never include the offending value) --------------------------


def _to_int(value: Any, _: Any = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise _BadValue("expected an integer or a string of digits")


def _to_bool(value: Any, _: Any = None) -> bool:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower() if isinstance(value, int | str) else None
    if key in _FLAGS:
        return _FLAGS[key]
    raise _BadValue("expected a flag: true/false, Y/N, 1/0")


def _to_str(value: Any, _: Any = None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _BadValue("expected a string")


def _to_datetime(value: Any, _: Any = None) -> datetime:
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.strip())
    except (AttributeError, TypeError, ValueError):
        raise _BadValue("expected an ISO 8601 time") from None
    if parsed.utcoffset() is None:
        raise _BadValue("expected a time with a UTC offset")
    return parsed


def _iso(value: str) -> datetime:
    """:func:`_to_datetime` of a string with no surrounding spaces (else it raises)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise _BadValue("expected a time with a UTC offset")
    return parsed


def _to_decimal(value: Any, _: Any = None) -> Decimal:
    if not isinstance(value, bool):
        try:
            return _decimal_text(str(value))
        except InvalidOperation:
            pass
    raise _BadValue("expected a decimal number")


def _decimal_text(value: str) -> Decimal:
    """:func:`_to_decimal` of a string (an invalid one raises InvalidOperation)."""
    number = Decimal(value.strip())
    if not number.is_finite():
        raise _BadValue("expected a decimal number")
    return number


def _to_mapping(value: Any, _: Any = None) -> dict[str, Any]:
    """A free-form object; PHP sends an empty one as ``[]`` and a sequential one as a list."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    raise _BadValue("expected an object")


def _to_strings(value: Any, _: Any = None) -> tuple[str, ...]:
    """A list of strings, sent as a list or as an object (``{"UA": "UA"}``)."""
    items = list(value.values()) if isinstance(value, Mapping) else value
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise _BadValue("expected a list of strings")
    return tuple(_to_str(item) for item in items)


def _optional(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T | None]:
    def structure_optional(value: Any, type_: Any) -> T | None:
        return None if value is None or value == "" else hook(value, type_)

    return structure_optional


_to_url: Final = _optional(_to_str)
# The scalar types whose hooks the converter registers (with ``""``/``None`` -> ``None`` for
# ``X | None``), by type.
_SCALAR_HOOKS: Final[Mapping[Any, Callable[[Any, Any], Any]]] = {
    str: _to_str,
    int: _to_int,
    bool: _to_bool,
    datetime: _to_datetime,
    Decimal: _to_decimal,
}


def _to_enum(value: Any, type_: Any) -> enum.Enum:
    result: enum.Enum = type_(_to_int(value) if issubclass(type_, int) else value)
    return result


# --- model hooks ---------------------------------------------------------------------------


def _model_hook(conv: cattrs.Converter, cls: type[Any], *, fast: bool) -> Callable[[Any, Any], Any]:
    overrides: dict[str, Any] = {
        field.name: override(
            rename=_wire_name(cls, field.name),
            struct_hook=_to_url if field.name.endswith(_URL_SUFFIXES) else None,
            omit=field.name in _LOCAL,
        )
        for field in attrs.fields(cls)
    }
    base = make_dict_structure_fn(cls, conv, **overrides)
    # The strict converter (contract tests) keeps cattrs' own function; production reads with
    # one generated for the model, which on any failure hands over to cattrs' for its message.
    quick = _fast_structure_fn(conv, cls) if fast else None

    direct = quick is not None and cls is not Numerator

    def structure_model(value: Any, _: Any) -> Any:
        if direct and value.__class__ is dict:  # the common case, read as below in one step
            try:
                return quick(value)  # type: ignore[misc]
            except Exception:  # cattrs' function says what is wrong
                return base(value, cls)
        value = {} if value == [] else value
        if not isinstance(value, Mapping):
            raise _BadValue("expected an object")
        settings = value.get("settings") if cls is Numerator else None
        if isinstance(settings, Mapping) and SEQUENT_GENERATOR in settings:
            value = {**value, _SEQUENT_KEY: settings[SEQUENT_GENERATOR]}
        if quick is not None:
            try:
                return quick(value)
            except Exception:  # noqa: S110 - cattrs' function below says what is wrong
                pass
        return base(value, cls)

    return structure_model


# What a hook returns unchanged: the exact classes each scalar hook lets through as they are.
_PASS: Final[Mapping[Any, str]] = {int: "int", str: "str", bool: "bool"}


def _fast_structure_fn(
    conv: cattrs.Converter, cls: type[Any]
) -> Callable[[Mapping[str, Any]], Any]:
    """One function per model, generated once, with every field's wire quirk resolved here.

    For each field the wire name, the hook and whether ``""``/``null`` mean ``None`` are decided
    when the converter is built, so reading a row is a dict lookup and, for the common case (a
    value already of the field's exact type), one class comparison. It computes what cattrs'
    generated function computes with the same hooks; on any failure the caller runs cattrs'
    function, which raises with its detailed message.
    """
    names: dict[str, Any] = {"cls": cls, "MISSING": _MISSING, "int": int, "str": str, "bool": bool}
    # Times and sums as text, read without their hooks' checks for other types (same result).
    names.update(iso=_iso, dec=_decimal_text)
    fields = attrs.fields(attrs.resolve_types(cls))  # the models' annotations are strings
    # Arguments by position when the model allows it (no dict of keywords built per row).
    positional = all(
        f.init
        and not f.kw_only
        and (f.name not in _LOCAL or f.default is not attrs.NOTHING)
        and not (isinstance(f.default, attrs.Factory) and f.default.takes_self)  # type: ignore[arg-type]
        for f in fields
    )
    lines = [f"def fast_{cls.__name__}(o):"] + ([] if positional else ["    kw = {}"])
    for number, field in enumerate(fields):
        if field.name in _LOCAL:
            if positional:
                lines.append(f"    a{number} = {_default_source(field, number, names)}")
            continue
        wire = _wire_name(cls, field.name)
        type_ = field.type
        args = get_args(type_)
        optional = len(args) == 2 and type(None) in args
        inner = next(a for a in args if a is not type(None)) if optional else type_
        url = field.name.endswith(_URL_SUFFIXES)
        if url:
            hook: Any = _to_str
        elif inner in _SCALAR_HOOKS:
            hook = _SCALAR_HOOKS[inner]
        else:
            hook = conv.get_structure_hook(type_)
            optional = False  # cattrs' hook for ``X | None`` reads the None itself
        h, t = f"h{number}", f"t{number}"
        names[h], names[t] = hook, inner if (url or inner in _SCALAR_HOOKS) else type_
        passed = _PASS.get(inner)
        read = f"{h}(v, {t})"
        if inner in _MODELS and inner is not Numerator:
            # A nested model sent as an object: its own generated function, not cattrs' hook
            # and the model hook's checks; anything else (and a None) goes through the hook.
            names[f"q{number}"] = _fast_structure_fn(conv, inner)
            read = f"q{number}(v) if v.__class__ is dict else {read}"
        if optional:
            # "" means None for numbers, flags, times and URLs; a plain ``str | None`` keeps it.
            empty = url or inner is not str
            none = "v is None or v == ''" if empty else "v is None"
            read = f"None if {none} else {read}"
        # The common cases first, each one class check: a value of the field's exact type
        # (a non-empty one where "" means None), an id as a digit string, a time as text.
        if inner is datetime and not url:
            read = f"iso(v) if v.__class__ is str and v else ({read})"
        if inner is Decimal:
            read = f"dec(v) if v.__class__ is str and v else ({read})"
        if inner is int and not url:
            # Ids come as digit strings from ``get`` (docs/portal.md#wire-quirks): ASCII digits
            # are exactly what ``_to_int`` reads, so they are read here without the regex.
            read = f"int(v) if v.__class__ is str and v.isdigit() and v.isascii() else ({read})"
        if passed is not None:
            # Where "" means None (a URL), only a non-empty string passes as it is.
            nonempty = " and v" if optional and url else ""
            read = f"v if v.__class__ is {passed}{nonempty} else ({read})"
        has_default = field.default is not attrs.NOTHING
        if positional and has_default and optional and field.default is None:
            # Absent reads as None, the default: no sentinel needed.
            lines.append(f"    v = o.get({wire!r})")
            lines.append(f"    a{number} = {read}")
        elif positional and has_default:
            default = _default_source(field, number, names)
            lines.append(f"    v = o.get({wire!r}, MISSING)")
            lines.append(f"    a{number} = {default} if v is MISSING else ({read})")
        elif positional:
            lines.append(f"    v = o[{wire!r}]")
            lines.append(f"    a{number} = {read}")
        elif has_default:
            lines.append(f"    v = o.get({wire!r}, MISSING)")
            lines.append("    if v is not MISSING:")
            lines.append(f"        kw[{field.alias!r}] = {read}")
        else:
            lines.append(f"    v = o[{wire!r}]")
            lines.append(f"    kw[{field.alias!r}] = {read}")
    setters = _slot_setters(cls) if positional else None
    if setters is not None:
        # A frozen attrs model's __init__ stores each field through ``object.__setattr__``; its
        # slots' own descriptors store the same values for less (reading a Document: 84,000 ->
        # 71,000 instructions under callgrind). Only where __init__ would do nothing else.
        names["new"] = object.__new__
        lines.append("    m = new(cls)")
        for number, setter in enumerate(setters):
            names[f"s{number}"] = setter
            lines.append(f"    s{number}(m, a{number})")
        lines.append("    return m")
    elif positional:
        lines.append(f"    return cls({', '.join(f'a{n}' for n in range(len(fields)))})")
    else:
        lines.append("    return cls(**kw)")
    exec("\n".join(lines), names)  # noqa: S102 - source built above from the model's fields
    function: Callable[[Mapping[str, Any]], Any] = names[f"fast_{cls.__name__}"]
    return function


_MISSING: Final = object()


def _slot_setters(cls: type[Any]) -> list[Callable[[Any, Any], None]] | None:
    """Each field's slot setter, in field order, when storing them is all ``__init__`` does.

    None (build with ``cls(...)``) when the class has no slot for a field, or its ``__init__``
    would do more: one that attrs did not generate for this very class, a ``__new__`` of its
    own, a validator, a converter, a pre- or post-init hook, a slot of its own (a cached hash).
    """
    init = getattr(cls.__dict__.get("__init__"), "__code__", None)
    if init is None or not init.co_filename.startswith("<attrs generated"):
        return None
    if any("__new__" in k.__dict__ for k in cls.__mro__[:-1]):  # a __new__ besides object's
        return None
    if any(hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")):
        return None
    fields = attrs.fields(cls)
    slots = {name for k in cls.__mro__ for name in k.__dict__.get("__slots__", ())}
    if slots - {"__weakref__"} != {field.name for field in fields}:
        return None
    setters = []
    for field in fields:
        if field.validator is not None or field.converter is not None or not field.init:
            return None
        owner = next((k for k in cls.__mro__ if field.name in k.__dict__), object)
        slot: Any = owner.__dict__.get(field.name)
        if type(slot) is not _SLOT:
            return None
        setters.append(slot.__set__)
    return setters


_SLOT: Final = type(Template.__dict__["id"])  # a slot's member descriptor


def _default_source(field: Any, number: int, names: dict[str, Any]) -> str:
    """Source text giving ``field``'s default as attrs would (a factory called for each row)."""
    name = f"d{number}"
    if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        names[name] = field.default.factory
        return f"{name}()"
    names[name] = field.default
    return name


def _model_unhook(conv: cattrs.Converter, cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cls):
        wire = _wire_name(cls, field.name)
        wire = field.name if wire == _CODE_KEY else wire
        overrides[field.name] = override(
            omit=wire == _SEQUENT_KEY or field.name in _LOCAL, rename=wire
        )
    base = make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **overrides)

    def unstructure_model(value: Any) -> dict[str, Any]:
        wire = base(value)
        if isinstance(value, Numerator) and value.sequent is not None:
            sequent = conv.unstructure(value.sequent, SequentSettings)
            wire["settings"] = {**wire.get("settings", {}), SEQUENT_GENERATOR: sequent}
        return wire

    return unstructure_model


def _build(*, strict: bool, fast: bool | None = None) -> cattrs.Converter:
    fast = not strict if fast is None else fast
    conv = cattrs.Converter(forbid_extra_keys=strict)
    conv.register_structure_hook(str, _to_str)  # "" stays a string; below, "" means None
    scalars = {int: _to_int, bool: _to_bool, datetime: _to_datetime, Decimal: _to_decimal}
    for type_, hook in scalars.items():
        conv.register_structure_hook(type_, hook)
        conv.register_structure_hook_func(partial(eq, type_ | None), _optional(hook))
    conv.register_structure_hook_func(partial(eq, Mapping[str, Any]), _to_mapping)
    conv.register_structure_hook_func(partial(eq, tuple[str, ...]), _to_strings)
    for enum_type in (EntityType, DocumentEventType):
        conv.register_structure_hook(enum_type, _to_enum)
    for cls in _MODELS:
        conv.register_structure_hook(cls, _model_hook(conv, cls, fast=fast))
        conv.register_unstructure_hook(cls, _model_unhook(conv, cls))
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_unstructure_hook(Decimal, str)
    return conv


#: Reads wire objects into models; unknown keys are ignored.
converter: cattrs.Converter = _build(strict=False)
#: The same hooks, but unknown keys are an error: for contract tests against recorded examples.
strict_converter: cattrs.Converter = _build(strict=True)


def structure(data: Any, cls: type[T], *, strict: bool = False) -> T:
    """Read one wire object into a model (or a scalar or container type).

    Args:
        data: the decoded JSON, e.g. ``result["document"]``.
        cls: the target type, e.g. :class:`Document` or ``list[Numerator]``.
        strict: reject keys the model does not know (for contract tests).

    Returns:
        The structured value.

    Raises:
        ResponseError: ``data`` does not have the shape of ``cls``; ``detail`` says where.
    """
    conv = strict_converter if strict else converter
    try:
        return conv.structure(data, cls)
    except Exception as exc:
        args = get_args(cls)
        name = getattr(args[-1] if args else cls, "__name__", str(cls))
        raise ResponseError(
            f"cannot read {name}",
            status=200,
            detail=cattrs.transform_error(exc, format_exception=_describe),
        ) from exc


def structure_templates(data: Any, *, strict: bool = False) -> list[Template]:
    """Read ``template.list``'s ``templates``: an object keyed by id, or a list.

    Args:
        data: the ``templates`` value; ``[]`` means no templates.
        strict: reject keys the model does not know.

    Returns:
        The templates in the portal's order.

    Raises:
        ResponseError: as :func:`structure`.
    """
    if isinstance(data, Mapping):
        return list(structure(data, dict[str, Template], strict=strict).values())
    return structure(data, list[Template], strict=strict)


def structure_fields(data: Any, *, strict: bool = False) -> dict[str, FieldDescription]:
    """Read ``getfields``' ``documentFields``/``templateFields``: field code -> description.

    Args:
        data: the mapping of codes to descriptions; ``[]`` means no fields.
        strict: reject keys the model does not know.

    Returns:
        The descriptions by code, in the portal's order, each with its ``code`` set.

    Raises:
        ResponseError: as :func:`structure`.
    """
    if isinstance(data, Mapping | list):
        data = {
            code: {**_to_mapping(desc), _CODE_KEY: code}
            if isinstance(desc, Mapping | list)
            else desc
            for code, desc in _to_mapping(data).items()
        }
    return structure(data, dict[str, FieldDescription], strict=strict)


def unstructure_params(value: Any) -> Any:
    """Turn a Python value into request parameters.

    Models become objects with wire names (fields left at their default are left out), enums
    their value, dates ISO 8601 strings, decimals strings, tuples and sets lists; mappings and
    lists are converted item by item. Bools stay bools (the encoder decides how to send them);
    anything else is returned unchanged.

    Args:
        value: a model, a mapping of parameters, or any value inside one.

    Returns:
        A JSON-compatible structure.
    """
    if isinstance(value, enum.Enum):
        return unstructure_params(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if attrs.has(type(value)):
        return unstructure_params(converter.unstructure(value))
    if isinstance(value, Mapping):
        return {unstructure_params(key): unstructure_params(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [unstructure_params(item) for item in value]
    return value
