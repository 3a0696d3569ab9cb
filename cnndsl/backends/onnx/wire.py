"""The few ONNX protobuf messages that cnndsl emits, as plain data and a hand-written encoder.

cnndsl's graphs need a small part of ONNX: nodes with attributes, initializers, tensor value
infos, one opset import and metadata. Encoding those messages here (protobuf's wire format is
tags, varints and length-prefixed bytes) lets ``cnndsl compile --to onnx`` run without importing
onnx, and write every weight array straight from numpy's buffer: building a ``ModelProto`` copies
each array into a ``TensorProto`` and ``SerializeToString`` copies all of it once more, which for
ResNet-50's 102 MB cost more time than building the graph, and three times the memory. The
weights can also go to a side file (ONNX external data), for models past protobuf's 2 GB.

Fields are written in field-number order and scalar lists unpacked, as onnx.proto (proto2)
declares them, which is what protobuf's own serializer produces: parsing the bytes with onnx and
serializing them again gives the same bytes (tested). Field numbers are onnx.proto's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# TensorProto.DataType
FLOAT, UINT8, INT8, INT32, INT64, BOOL, DOUBLE = 1, 2, 3, 6, 7, 9, 11
_DATA_TYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UINT8, np.dtype(np.int8): INT8,
               np.dtype(np.int32): INT32, np.dtype(np.int64): INT64, np.dtype(np.bool_): BOOL,
               np.dtype(np.float64): DOUBLE}
# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_TENSOR, _ATTR_FLOATS, _ATTR_INTS = 1, 2, 3, 4, 6, 7
EXTERNAL_ALIGNMENT = 4096  # a page: runtimes may map external tensors straight from the file

Chunk = bytes | memoryview


@dataclass
class Node:
    """One NodeProto: an operator applied to named tensors."""

    op: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)  # int, float, str, lists, Tensor
    doc: str = ""


@dataclass
class Tensor:
    """A named constant tensor: the value of a ``Constant`` node."""

    name: str
    array: np.ndarray


@dataclass
class ValueInfo:
    """A graph input or output: name, element type and dims (ints, or names for symbolic ones)."""

    name: str
    elem_type: int
    dims: list[int | str]


@dataclass
class Graph:
    """One GraphProto; the initializers are kept as arrays until they are written."""

    name: str
    nodes: list[Node]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    initializers: dict[str, np.ndarray]
    doc: str = ""


@dataclass
class Model:
    """One ModelProto with a single (default-domain) opset import."""

    graph: Graph
    opset: int
    ir_version: int
    producer: str
    producer_version: str
    doc: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


# wire format ------------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    if value < 0:  # int64 fields: two's complement in ten bytes
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode("utf-8"))


# messages ---------------------------------------------------------------------------------------
def _tensor(name: str, array: np.ndarray) -> tuple[bytes, memoryview]:
    """A TensorProto's fields before its data (dims, type, name), and the data little-endian."""
    native = array.dtype.newbyteorder("=")
    if native not in _DATA_TYPES:
        raise TypeError(f"{name}: no ONNX element type for {array.dtype}")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))  # ONNX's byte order
    head = b"".join(_int(1, dim) for dim in array.shape)
    head += _int(2, _DATA_TYPES[native])
    if name:
        head += _string(8, name)
    return head, data.reshape(-1).view(np.uint8).data


class _ExternalData:
    """Places tensors' data in one side file, each at an offset aligned for memory mapping."""

    def __init__(self, location: str):
        self.location = location
        self.pieces: list[Chunk] = []
        self.offset = 0

    def place(self, data: memoryview) -> bytes:
        """TensorProto fields that point at ``data``, now appended to the side file."""
        padding = -self.offset % EXTERNAL_ALIGNMENT
        if padding:
            self.pieces.append(bytes(padding))
            self.offset += padding
        self.pieces.append(data)
        entries = {"location": self.location, "offset": self.offset, "length": data.nbytes}
        self.offset += data.nbytes
        fields = b"".join(_message(13, _string(1, key) + _string(2, str(value)))
                          for key, value in entries.items())
        return fields + _int(14, 1)  # data_location = EXTERNAL


def _attribute(name: str, value: Any) -> bytes:
    out = _string(1, name)
    if isinstance(value, Tensor):
        head, data = _tensor(value.name, value.array)
        out += _message(5, head + _message(9, bytes(data))) + _int(20, _ATTR_TENSOR)
    elif isinstance(value, bool | int | np.integer):
        out += _int(3, int(value)) + _int(20, _ATTR_INT)
    elif isinstance(value, float | np.floating):
        out += _float(2, float(value)) + _int(20, _ATTR_FLOAT)
    elif isinstance(value, str):
        out += _string(4, value) + _int(20, _ATTR_STRING)
    elif isinstance(value, list | tuple) and value and all(isinstance(v, int) for v in value):
        out += b"".join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)
    elif isinstance(value, list | tuple) and value:
        out += b"".join(_float(7, float(v)) for v in value) + _int(20, _ATTR_FLOATS)
    else:
        raise TypeError(f"attribute {name}: cannot encode {value!r}")
    return out


def node_bytes(node: Node) -> bytes:
    """The serialized NodeProto (attributes in name order, as ``onnx.helper.make_node``)."""
    out = b"".join(_string(1, name) for name in node.inputs)
    out += b"".join(_string(2, name) for name in node.outputs)
    if node.name:  # as make_node, which leaves an empty name unset
        out += _string(3, node.name)
    out += _string(4, node.op)
    out += b"".join(_message(5, _attribute(key, node.attributes[key]))
                    for key in sorted(node.attributes))
    if node.doc:
        out += _string(6, node.doc)
    return out


def value_info_bytes(info: ValueInfo) -> bytes:
    """The serialized ValueInfoProto of a tensor."""
    dims = b"".join(
        _message(1, _int(1, dim) if isinstance(dim, int) else _string(2, dim))
        for dim in info.dims)
    tensor_type = _int(1, info.elem_type) + _message(2, dims)
    return _string(1, info.name) + _message(2, _message(1, tensor_type))


def _graph_chunks(graph: Graph, external: _ExternalData | None) -> Iterator[Chunk]:
    for node in graph.nodes:
        yield _message(1, node_bytes(node))
    yield _string(2, graph.name)
    for name, array in graph.initializers.items():
        head, data = _tensor(name, array)
        if external is not None:
            yield _message(5, head + external.place(data))
            continue
        head += _varint(9 << 3 | 2) + _varint(data.nbytes)  # raw_data, followed by the data
        yield _varint(5 << 3 | 2) + _varint(len(head) + data.nbytes) + head
        yield data
    if graph.doc:
        yield _string(10, graph.doc)
    for info in graph.inputs:
        yield _message(11, value_info_bytes(info))
    for info in graph.outputs:
        yield _message(12, value_info_bytes(info))


def _model_chunks(model: Model, external: _ExternalData | None) -> list[Chunk]:
    graph = list(_graph_chunks(model.graph, external))
    head = _int(1, model.ir_version) + _string(2, model.producer)
    head += _string(3, model.producer_version)
    if model.doc:
        head += _string(6, model.doc)
    head += _varint(7 << 3 | 2) + _varint(nbytes(graph))
    tail = _message(8, _string(1, "") + _int(2, model.opset))
    tail += b"".join(_message(14, _string(1, key) + _string(2, value))
                     for key, value in model.metadata.items())
    return [head, *graph, tail]


def chunks(model: Model) -> list[Chunk]:
    """The serialized ModelProto in pieces; the weights are views of the arrays, not copies."""
    return _model_chunks(model, None)


def external_chunks(model: Model, location: str) -> tuple[list[Chunk], list[Chunk]]:
    """The ModelProto with its initializers' data in a side file named ``location`` (relative to
    the model), and that file's contents: ONNX's external data, for models past 2 GB."""
    external = _ExternalData(location)
    return _model_chunks(model, external), external.pieces


def to_bytes(model: Model) -> bytes:
    """The whole serialized ModelProto."""
    return b"".join(chunks(model))


def nbytes(pieces: Iterable[Chunk]) -> int:
    """The length of the concatenated chunks."""
    return sum(len(piece) if isinstance(piece, bytes) else piece.nbytes for piece in pieces)


__all__ = ["BOOL", "DOUBLE", "EXTERNAL_ALIGNMENT", "FLOAT", "INT32", "INT64", "Graph", "Model",
           "Node", "Tensor", "ValueInfo", "chunks", "external_chunks", "nbytes", "node_bytes",
           "to_bytes", "value_info_bytes"]
