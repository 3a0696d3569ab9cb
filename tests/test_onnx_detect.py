"""The ONNX detector with decoding and NMS returns what the numpy post-processing returns."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from cnndsl import cli, ir  # noqa: E402
from cnndsl.backends.onnx import to_onnx  # noqa: E402
from cnndsl.backends.onnx.detect import _strictly_above, add_detection  # noqa: E402
from cnndsl.compiler import check, load  # noqa: E402
from cnndsl.detection import decode_yolo, postprocess  # noqa: E402

SPEC = Path(__file__).parent.parent / "specs" / "yolo_tiny.cnn"


def _network(classes: int = 3) -> ir.Network:
    """yolo_tiny at 64 x 64, width 4; its expect lines describe the defaults, so they fail."""
    result = check(SPEC, input="3x64x64", params={"classes": classes, "width": 4})
    assert result.network is not None
    assert {d.code.slug for d in result.diagnostics} <= {"expect-failed"}
    return result.network


def _run(model: object, images: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(),  # type: ignore[attr-defined]
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"image": images}), strict=True))


def _python(network: ir.Network, raw: dict[str, np.ndarray], **options: float) -> list:
    heads = [network.node(t) for t in network.outputs.values()]
    decoded = [decode_yolo(raw[name], h.anchors, h.stride, h.classes)  # type: ignore[union-attr]
               for name, h in zip(network.outputs, heads, strict=True)]
    merged = [np.concatenate([getattr(d, f) for d in decoded], axis=1)
              for f in ("boxes", "objectness", "class_probs")]
    return postprocess(merged, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seed", "score", "iou", "top"), [
    (0, 0.25, 0.45, 100), (1, 0.4, 0.3, 5), (2, 0.1, 0.6, 20), (3, 0.5, 0.5, 3),
])
def test_same_detections_as_numpy(seed: int, score: float, iou: float, top: int) -> None:
    network = _network()
    model = add_detection(to_onnx(network, seed=seed), network, score_threshold=score,
                          iou_threshold=iou, max_detections=top, keep_raw=True)
    onnx.checker.check_model(model, full_check=True)
    images = np.random.default_rng(seed).normal(size=(3, 3, 64, 64)).astype(np.float32)
    out = _run(model, images)
    expected = _python(network, out, score_threshold=score, iou_threshold=iou,
                       max_detections=top)
    assert sum(len(e.scores) for e in expected) > 0, "the case should select something"
    candidates = _python(network, out, score_threshold=score, iou_threshold=1.0,
                         max_detections=10**6)
    assert len(out["scores"]) < sum(len(c.scores) for c in candidates), "NMS should suppress"
    # Grouped by image, in image order.
    assert np.all(np.diff(out["batch_index"]) >= 0)
    for image, want in enumerate(expected):
        mine = out["batch_index"] == image
        assert mine.sum() == len(want.scores)
        np.testing.assert_array_equal(out["classes"][mine], want.classes)
        np.testing.assert_allclose(out["scores"][mine], want.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["boxes"][mine], want.boxes, rtol=1e-5, atol=1e-3)


def test_nothing_above_the_threshold_gives_empty_outputs() -> None:
    network = _network()
    model = add_detection(to_onnx(network), network, score_threshold=0.9999)
    out = _run(model, np.zeros((2, 3, 64, 64), np.float32))
    assert set(out) == {"boxes", "scores", "classes", "batch_index"}
    assert out["boxes"].shape == (0, 4) and out["scores"].shape == (0,)
    assert out["classes"].dtype == np.int64 and out["batch_index"].dtype == np.int64


def test_one_class_detector() -> None:
    network = _network(classes=1)
    model = add_detection(to_onnx(network, seed=4), network, score_threshold=0.3,
                          keep_raw=True)
    out = _run(model, np.random.default_rng(4).normal(size=(1, 3, 64, 64)).astype(np.float32))
    (want,) = _python(network, out, score_threshold=0.3)
    assert len(want.scores) > 0
    np.testing.assert_allclose(out["scores"], want.scores, rtol=1e-5, atol=1e-6)
    assert not out["classes"].any()


def test_needs_a_detect_head() -> None:
    network = load("network plain {\n  input x: 3 x 8 x 8\n  conv 4 3x3\n}\n")
    with pytest.raises(ValueError, match="no detect head"):
        add_detection(to_onnx(network), network)


def test_cli_compile_detect(tmp_path: Path) -> None:
    spec = tmp_path / "det.cnn"
    spec.write_text(
        "network det {\n  input image: 3 x 32 x 32\n"
        "  conv 8 3x3 /2 pad 1 -> bn -> leakyrelu 0.1 -> maxpool 2x2 -> maxpool 2x2\n"
        "  conv 14 1x1 -> detect anchors=((8, 8), (16, 16)) classes=2 stride=8\n}\n")
    target = tmp_path / "det.onnx"
    args = ["compile", str(spec), "--to", "onnx", "--detect", "--score-threshold", "0.1",
            "--max-detections", "7", "-o", str(target)]
    assert cli.main(args, io.StringIO()) == 0
    model = onnx.load(str(target))
    assert [o.name for o in model.graph.output] == ["boxes", "scores", "classes", "batch_index"]
    out = _run(model, np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32))
    assert 0 < len(out["scores"]) <= 14
    assert np.bincount(out["batch_index"]).max() <= 7


def test_a_score_exactly_on_the_threshold_is_kept_as_in_numpy() -> None:
    network = _network()
    images = np.random.default_rng(5).normal(size=(2, 3, 64, 64)).astype(np.float32)
    loose = _run(add_detection(to_onnx(network, seed=5), network, score_threshold=0.05,
                               max_detections=1000), images)
    edge = float(loose["scores"].min())  # a float32 score that survived NMS
    model = add_detection(to_onnx(network, seed=5), network, score_threshold=edge,
                          max_detections=1000, keep_raw=True)
    out = _run(model, images)
    assert edge in out["scores"].tolist()
    expected = _python(network, out, score_threshold=edge, max_detections=1000)
    assert len(out["scores"]) == sum(len(e.scores) for e in expected)
    for threshold in (0.25, 0.3, 0.1, 1 / 3, 0.0):
        above = _strictly_above(threshold)
        assert above.dtype == np.float32 and above < threshold
        assert np.nextafter(above, np.float32(1)) >= threshold  # no float32 in between
