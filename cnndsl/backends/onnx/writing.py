"""Writing: a model's bytes as an ``onnx.ModelProto`` or as files, atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnndsl.backends.onnx import wire
from cnndsl.files import atomic_write, atomic_write_all

if TYPE_CHECKING:
    import onnx

PROTOBUF_LIMIT = 2**31 - 1  # protobuf parses no message of 2 GiB or more


def as_proto(model: wire.Model) -> onnx.ModelProto:
    """Parse a model's bytes into an ``onnx.ModelProto`` (imports onnx)."""
    import onnx

    data = wire.to_bytes(model)
    if len(data) > PROTOBUF_LIMIT:
        raise ValueError(f"model {model.graph.name} is larger than protobuf's 2 GB limit; "
                         "write it with write_onnx, which puts the weights beside it")
    return onnx.load_model_from_string(data)



def write_onnx(model: wire.Model | onnx.ModelProto, path: str | Path, *,
               external_data: bool | None = None) -> list[Path]:
    """Write a model atomically (temporary files, then renames); returns the files, model first.

    A :class:`~cnndsl.backends.onnx.wire.Model` streams from its weight arrays, with no copy.
    With ``external_data`` (by default: when the model would pass protobuf's 2 GB limit) its
    weights go to ``PATH.data`` beside it, as ONNX external data.
    """
    if not isinstance(model, wire.Model):
        if external_data:
            raise ValueError("external data is written for cnndsl's models; for a ModelProto "
                             "use onnx.save_model(..., save_as_external_data=True)")
        return [atomic_write(path, model.SerializeToString())]
    path = Path(path)
    embedded = wire.chunks(model)
    if external_data is None:
        external_data = wire.nbytes(embedded) > PROTOBUF_LIMIT
    if not external_data:
        return [atomic_write(path, embedded)]
    location = f"{path.name}.data"
    graph, data = wire.external_chunks(model, location)
    # Both files are written before either replaces an old one, and the weights are renamed
    # first: an old model that has no weights file never sees a half-made pair.
    weights = path.with_name(location)
    atomic_write_all([(weights, data), (path, graph)])
    return [path, weights]



