"""Layer calls: a layer word or a tensor operation (``add(a, b)``) becomes IR nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnndsl import layers
from cnndsl.diagnostics import Code, did_you_mean
from cnndsl.frontend.arguments import layer_signature
from cnndsl.frontend.failures import Fail
from cnndsl.frontend.naming import Frame, Scope
from cnndsl.layers import ArgumentError
from cnndsl.syntax import ast

if TYPE_CHECKING:
    from cnndsl.frontend.statements import Elaborator


def layer(el: Elaborator, call: ast.Call, x: str, frame: Frame, scope: Scope,
          following: ast.Call | None, own_name: str | None) -> str:
    """The nodes of one layer call, named by its label or the next ``word<n>``; the last one."""
    word = layers.LAYERS[call.name]
    args = el.binder.bind(layer_signature(word), call, frame.env)
    shape = el.graph.shapes.get(x)
    if shape is None:
        raise Fail()
    context = layers.Context(
        input_shape=shape,
        followed_by_batchnorm=following is not None and following.name == "bn",
        image_size=el.graph.image,
    )
    try:
        built = word.build(args, context)
    except ArgumentError as error:
        raise el.fail(Code.BAD_VALUE, call.span, error.message) from None
    path = own_name or el.names.auto_name(call.name, scope)
    for suffix, fields in built:
        name = f"{path}.{suffix}" if suffix else path
        node_type = layers.NODE_TYPES[fields.pop("kind")]
        node = node_type(name=name, inputs=[x], span=call.span, **fields)
        x = el.graph.add(node, [x])
    return x


def tensor_op(el: Elaborator, call: ast.Call, x: str | None, frame: Frame, scope: Scope,
              first: bool, own_name: str | None = None) -> str:
    """``add(a, b)``, ``mul``, ``concat``: one node over named tensors (and the chain's own)."""
    sources: list[str] = [] if first or x is None else [x]
    for arg in call.args:
        if isinstance(arg.value, ast.Splat) and arg.name is None:
            sources.extend(_splat(el, arg.value, frame))
            continue
        if arg.name is not None or not isinstance(arg.value, ast.Name):
            raise el.fail(Code.ARGUMENT_TYPE, arg.span,
                          f"'{call.name}' takes tensor names, such as {call.name}(a, b)")
        ref = arg.value.name
        tensor = el.tensor(ref, frame)
        if tensor is None:
            raise el.fail(Code.UNDEFINED_NAME, arg.span, f"no tensor named '{ref}'",
                          did_you_mean(ref, el.tensors_of(frame)))
        frame.used.add(ref)
        if not tensor:
            raise Fail()
        sources.append(tensor)
    if len(sources) < 2:
        raise el.fail(Code.MISSING_ARGUMENT, call.span,
                      f"'{call.name}' needs at least two tensors")
    kind = layers.TENSOR_OPS[call.name]
    name = own_name or el.names.auto_name(call.name, scope)
    node = layers.NODE_TYPES[kind](name=name, inputs=sources, span=call.span)
    return el.graph.add(node, sources)


def _splat(el: Elaborator, splat: ast.Splat, frame: Frame) -> list[str]:
    """The tensors of ``m.*``: every instance output of label ``m``'s repeated call."""
    label = splat.name
    if label not in frame.repeats:
        if label in frame.tensors:
            raise el.fail(Code.BAD_VALUE, splat.span,
                          f"'{label}' repeats no call: '{label}.*' needs a statement such as "
                          f"'{label}: bottleneck(64) x 3'")
        raise el.fail(Code.UNDEFINED_NAME, splat.span, f"no tensor named '{label}'",
                      did_you_mean(label, frame.tensors))
    outputs = frame.repeats[label]
    if outputs is None:
        raise el.fail(Code.BAD_VALUE, splat.span,
                      f"'{label}' repeats more than one call, so '{label}.*' is ambiguous",
                      "give each repeated call its own labelled statement")
    frame.used.add(label)
    if not all(outputs):
        raise Fail()
    return list(outputs)
