"""The IR's JSON form and JSON Schema, made by pydantic models derived from the IR dataclasses.

The IR itself is plain dataclasses (building it costs no validation, and importing it no model
construction); this module, imported only where JSON is read or written (``cnndsl ir``,
``--schema``), mirrors each dataclass as a pydantic model with the same fields, defaults and
docstring, built once on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, create_model

from cnndsl import ir
from cnndsl.diagnostics import Span
from cnndsl.symbolic import Dim, Poly, dim_str

# A size is an int or a symbolic polynomial; JSON carries symbolic ones as strings.
Size = Annotated[
    Dim,
    PlainSerializer(lambda d: d if isinstance(d, int) else dim_str(d), return_type=Any),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]}),
]

_NODE = ConfigDict(arbitrary_types_allowed=True, extra="forbid")


def _annotation(cls: type, name: str, overrides: dict[str, Any]) -> Any:
    """A field's annotation evaluated where it was written, with the JSON types swapped in."""
    for owner in cls.__mro__:
        text = vars(owner).get("__annotations__", {}).get(name)
        if text is not None:
            if not isinstance(text, str):
                return text
            namespace = vars(sys.modules[owner.__module__])
            return eval(text, dict(namespace), overrides)
    raise KeyError(name)


def _model(cls: type, config: ConfigDict, overrides: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        annotation = _annotation(cls, item.name, overrides)
        if item.default is not dataclasses.MISSING:
            fields[item.name] = (annotation, item.default)
        elif item.default_factory is not dataclasses.MISSING:
            factory = overrides.get(getattr(item.default_factory, "__name__", ""),
                                    item.default_factory)
            fields[item.name] = (annotation, Field(default_factory=factory))
        else:
            fields[item.name] = (annotation, ...)
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        cls.__name__, __config__=config, __doc__=cls.__doc__, **fields)
    return model


@functools.cache
def models() -> dict[type, type[BaseModel]]:
    """Each IR dataclass's pydantic model (built once)."""
    overrides: dict[str, Any] = {"Dim": Size, "Shape": tuple[Size, ...]}
    built: dict[type, type[BaseModel]] = {}
    built[Span] = _model(Span, ConfigDict(frozen=True), overrides)
    overrides["Span"] = built[Span]
    built[ir.ReceptiveField] = _model(ir.ReceptiveField, ConfigDict(extra="forbid"), overrides)
    overrides["ReceptiveField"] = built[ir.ReceptiveField]
    for cls in ir.NODE_KINDS:
        built[cls] = _model(cls, _NODE, overrides)
    union: Any = Union[tuple(built[cls] for cls in ir.NODE_KINDS)]  # noqa: UP007 - at runtime
    overrides["AnyNode"] = Annotated[union, Field(discriminator="kind")]
    for other in (ir.BlockInstance, ir.ExpectResult):
        built[other] = _model(other, ConfigDict(), overrides)
        overrides[other.__name__] = built[other]
    built[ir.Network] = _model(ir.Network, ConfigDict(arbitrary_types_allowed=True), overrides)
    return built


def _plain(value: Any) -> Any:
    """Dataclasses as dicts, all the way down; sizes (``Poly``) stay as they are."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type | Poly):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the IR."""
    return models()[ir.Network].model_json_schema()


def to_json(network: ir.Network, indent: int | None = None) -> str:
    """The network as JSON."""
    model = models()[ir.Network].model_validate(_plain(network))
    return model.model_dump_json(indent=indent)


def _dataclass(value: Any, classes: dict[type[BaseModel], type]) -> Any:
    if isinstance(value, BaseModel):
        cls = classes[type(value)]
        return cls(**{name: _dataclass(getattr(value, name), classes)
                      for name in type(value).model_fields})
    if isinstance(value, list):
        return [_dataclass(v, classes) for v in value]
    if isinstance(value, tuple):
        return tuple(_dataclass(v, classes) for v in value)
    if isinstance(value, dict):
        return {k: _dataclass(v, classes) for k, v in value.items()}
    return value


def from_json(document: str | bytes | dict[str, Any]) -> ir.Network:
    """A network from JSON, validated; pydantic's ValidationError (a ValueError) if invalid."""
    model_type = models()[ir.Network]
    if isinstance(document, dict):
        model = model_type.model_validate(document)
    else:
        model = model_type.model_validate_json(document)
    classes = {model: cls for cls, model in models().items()}
    network: ir.Network = _dataclass(model, classes)
    return network
