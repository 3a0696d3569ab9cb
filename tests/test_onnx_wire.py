"""cnndsl's own ONNX encoder against onnx's protobuf classes and ``onnx.helper``.

The encoder must write exactly what protobuf writes for the same message: a node or value info
built with ``onnx.helper`` serializes to the encoder's bytes, and every exported model is in
canonical form (parse, serialize again: the same bytes). Also here: the IR-version table, the
weights written without a copy, the on-disk opset cache, and a compile with onnx absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

import cnndsl
from cnndsl.backends import onnx as onnx_backend
from cnndsl.backends.onnx import opsets, wire, writing

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p.name for p in (ROOT / "specs").glob("*.cnn"))

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
float32s = st.floats(width=32, allow_nan=False)
dtypes = st.sampled_from([np.float32, np.int64, np.int32, np.uint8, np.int8, np.bool_,
                          np.float64])
shapes = st.lists(st.integers(0, 3), max_size=3).map(tuple)


@st.composite
def tensors(draw: st.DrawFn) -> wire.Tensor:
    dtype = draw(dtypes)
    shape = draw(shapes)
    size = int(np.prod(shape)) if shape else 1
    raw = draw(st.binary(min_size=size * np.dtype(dtype).itemsize,
                         max_size=size * np.dtype(dtype).itemsize))
    array = np.frombuffer(raw, dtype=np.uint8).view(dtype).reshape(shape)
    if dtype is np.bool_:
        array = array.astype(np.uint8) % 2 == 1
    return wire.Tensor(draw(names), array)


attribute_values = st.one_of(
    int64s, float32s, names, st.lists(int64s, min_size=1, max_size=4),
    st.lists(float32s, min_size=1, max_size=4), tensors())


def _helper_value(value: object) -> object:
    if isinstance(value, wire.Tensor):
        return numpy_helper.from_array(value.array, value.name)
    return value


@settings(max_examples=300, deadline=None)
@given(op=names, inputs=st.lists(names, max_size=3), outputs=st.lists(names, max_size=2),
       name=names, doc=names,
       attributes=st.dictionaries(names.filter(bool), attribute_values, max_size=4))
def test_a_node_encodes_as_onnx_helper_makes_it(op: str, inputs: list[str], outputs: list[str],
                                                 name: str, doc: str,
                                                 attributes: dict[str, object]) -> None:
    node = wire.Node(op, inputs, outputs, name, attributes, doc)
    expected = helper.make_node(op, inputs, outputs, name=name,
                                **{k: _helper_value(v) for k, v in attributes.items()})
    if doc:
        expected.doc_string = doc
    assert wire.node_bytes(node) == expected.SerializeToString()


@settings(max_examples=100, deadline=None)
@given(name=names, elem_type=st.sampled_from([wire.FLOAT, wire.INT64, wire.BOOL]),
       dims=st.lists(st.one_of(st.integers(0, 2**40), names.filter(bool)), max_size=5))
def test_a_value_info_encodes_as_onnx_helper_makes_it(name: str, elem_type: int,
                                                       dims: list[int | str]) -> None:
    expected = helper.make_tensor_value_info(name, elem_type, dims)
    assert wire.value_info_bytes(wire.ValueInfo(name, elem_type, dims)) == \
        expected.SerializeToString()


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_encodes_in_canonical_form(spec: str) -> None:
    network = cnndsl.load(str(ROOT / "specs" / spec))
    # without batch norm, folding changes nothing: VGG-16's 528 MB once is enough
    has_norm = any(node.kind == "batchnorm" for node in network.nodes)  # type: ignore[attr-defined]
    for fold in (False, True) if has_norm else (False,):
        model = onnx_backend.build_onnx(network, opset=13, fold_batchnorm=fold)
        data = wire.to_bytes(model)
        parsed = onnx.load_model_from_string(data)
        assert parsed.SerializeToString() == data
        assert [t.name for t in parsed.graph.initializer] == list(model.graph.initializers)
        assert len(parsed.graph.node) == len(model.graph.nodes)


def test_the_ir_version_table_is_onnx_helpers() -> None:
    newest = onnx.defs.onnx_opset_version()
    for opset in range(onnx_backend.MIN_OPSET, newest + 1):
        assert opsets.ir_version(opset) == helper.find_min_ir_version_for(
            [helper.make_opsetid("", opset)]), opset


def test_weights_are_written_from_the_arrays_without_a_copy() -> None:
    model = onnx_backend.build_onnx(cnndsl.load(str(ROOT / "specs" / "lenet5.cnn")))
    views = [c for c in wire.chunks(model) if isinstance(c, memoryview)]
    arrays = list(model.graph.initializers.values())
    assert len(views) == len(arrays)
    for view, array in zip(views, arrays, strict=True):
        assert np.shares_memory(np.frombuffer(view, np.uint8), array)


def test_big_endian_arrays_are_written_little_endian() -> None:
    array = np.arange(6, dtype=">f4").reshape(2, 3)
    node = wire.Node("Constant", [], ["c"], "c", {"value": wire.Tensor("c", array)})
    parsed = onnx.NodeProto.FromString(wire.node_bytes(node))
    assert np.array_equal(numpy_helper.to_array(parsed.attribute[0].t), array)


# the opset cache --------------------------------------------------------------------------------


def test_the_opset_query_is_cached_per_installation(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNDSL_CACHE_DIR", str(tmp_path / "cache"))
    asked = onnx_backend.opset_limits()
    assert asked[0] == onnx.defs.onnx_opset_version()
    stored = json.loads((tmp_path / "cache" / "opsets.json").read_text())
    assert [stored["onnx"], stored["onnxruntime"]] == list(asked)

    def fail() -> tuple[int, int | None]:
        raise AssertionError("asked again")

    monkeypatch.setattr(opsets, "_query_opsets", fail)
    assert onnx_backend.opset_limits() == asked  # from the cache
    # another installation (a reinstall changes the modification time) asks again
    monkeypatch.setattr(opsets, "_installed", lambda package: f"{package}:elsewhere")
    monkeypatch.setattr(opsets, "_query_opsets", lambda: (21, 20))
    assert onnx_backend.opset_limits() == (21, 20)
    assert onnx_backend.max_opset() == 20


def test_an_unwritable_cache_only_costs_the_query(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CNNDSL_CACHE_DIR", str(blocker / "cache"))
    assert onnx_backend.opset_limits()[0] == onnx.defs.onnx_opset_version()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "opsets.json").write_text("{not json")
    monkeypatch.setenv("CNNDSL_CACHE_DIR", str(tmp_path / "cache"))
    assert onnx_backend.opset_limits()[0] == onnx.defs.onnx_opset_version()


# compiling without onnx -------------------------------------------------------------------------

COMPILE = """
import sys
{block}
from cnndsl.cli import main
code = main(['compile', sys.argv[1], '--to', 'onnx', '-o', sys.argv[2]])
assert code == 0, code
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime')
                and sys.modules[m] is not None)
assert not loaded, loaded
"""


def _compile_in_a_fresh_process(tmp_path: Path, block: str, target: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CNNDSL_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", COMPILE.format(block=block), str(ROOT / "specs" / "resnet18.cnn"),
         str(target)], capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr


def test_compile_needs_neither_onnx_nor_onnxruntime(tmp_path: Path) -> None:
    # None in sys.modules makes an import fail: as if the packages were not installed
    block = "sys.modules['onnx'] = sys.modules['onnxruntime'] = None"
    _compile_in_a_fresh_process(tmp_path, block, tmp_path / "bare.onnx")
    model = onnx.load(str(tmp_path / "bare.onnx"))
    assert model.opset_import[0].version == max(opsets.IR_VERSIONS)
    onnx.checker.check_model(model, full_check=True)


def test_a_cached_compile_imports_no_onnx_package(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNDSL_CACHE_DIR", str(tmp_path / "cache"))
    onnx_backend.opset_limits()  # the same installation as the child process's
    _compile_in_a_fresh_process(tmp_path, "", tmp_path / "cached.onnx")
    model = onnx.load(str(tmp_path / "cached.onnx"))
    assert model.opset_import[0].version == onnx_backend.max_opset()
    onnx.checker.check_model(model, full_check=True)


# external data ----------------------------------------------------------------------------------


def test_external_data_runs_as_the_embedded_model(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import onnxruntime as ort

    from cnndsl.cli import main

    spec = str(ROOT / "specs" / "resnet18.cnn")
    target = tmp_path / "r18.onnx"
    assert main(["compile", spec, "--to", "onnx", "--input", "3x64x64", "--external-data",
                 "-o", str(target)]) == 0
    assert "and " + str(target) + ".data" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r18.onnx", "r18.onnx.data"]
    onnx.checker.check_model(str(target), full_check=True)
    model = onnx.load(str(target), load_external_data=False)
    for tensor in model.graph.initializer:
        assert tensor.data_location == onnx.TensorProto.EXTERNAL and not tensor.raw_data
        entries = {e.key: e.value for e in tensor.external_data}
        assert entries["location"] == "r18.onnx.data"
        assert int(entries["offset"]) % wire.EXTERNAL_ALIGNMENT == 0
    embedded = onnx_backend.to_onnx(spec, input="3x64x64")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    ours = ort.InferenceSession(str(target)).run(None, {"image": x})[0]
    reference = ort.InferenceSession(embedded.SerializeToString()).run(None, {"image": x})[0]
    assert np.array_equal(ours, reference)
    loaded = onnx.load(str(target))  # the weights read back equal the embedded ones
    for a, b in zip(loaded.graph.initializer, embedded.graph.initializer, strict=True):
        assert np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))


def test_a_model_past_the_protobuf_limit_gets_external_data(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    model = onnx_backend.build_onnx(cnndsl.load(str(ROOT / "specs" / "lenet5.cnn")))
    monkeypatch.setattr(writing, "PROTOBUF_LIMIT", 100_000)  # LeNet-5: 247 KB of weights
    with pytest.raises(ValueError, match="2 GB"):
        onnx_backend.as_proto(model)
    onnx_backend.write_onnx(model, tmp_path / "lenet.onnx")
    assert (tmp_path / "lenet.onnx.data").stat().st_size >= 61_706 * 4
    onnx.checker.check_model(str(tmp_path / "lenet.onnx"), full_check=True)
    with pytest.raises(ValueError, match="save_as_external_data"):
        onnx_backend.write_onnx(onnx.ModelProto(), tmp_path / "x.onnx", external_data=True)
