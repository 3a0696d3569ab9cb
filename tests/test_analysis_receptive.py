"""Receptive fields against a brute-force measure in torch.

The measure: run the network's spatial structure on one channel of ones in float64 (convolutions
with all-ones kernels, max pooling as average pooling over the same windows, activations and
normalisations as the identity, so no gradient is lost to a dead ReLU or a max), take the
gradient of the centre output of a tensor with respect to the input, and read the rows and
columns where it is nonzero. Every weight is positive, so nothing cancels: a pixel has a nonzero
gradient exactly when the centre output depends on it. The input is made large enough that the
centre output's field lies inside it, where the analysis (on an unbounded input) and the measure
must agree to the pixel.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl import cli, ir
from cnndsl.analysis import receptive

torch = pytest.importorskip("torch")
F = torch.nn.functional

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.cnn"))


def _ones(kh: int, kw: int) -> torch.Tensor:
    return torch.ones(1, 1, kh, kw, dtype=torch.float64)


def _forward(node: ir.AnyNode, inputs: list[torch.Tensor]) -> torch.Tensor:
    x = inputs[0] if inputs else None
    if isinstance(node, ir.Conv):
        top, left, bottom, right = node.padding
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, _ones(*node.kernel), stride=node.stride, dilation=node.dilation)
    if isinstance(node, ir.ConvTranspose):
        return F.conv_transpose2d(x, _ones(*node.kernel), stride=node.stride,
                                  padding=node.padding, output_padding=node.output_padding,
                                  dilation=node.dilation)
    if isinstance(node, ir.Pool):  # the windows of max pooling, with a gradient to each pixel
        return F.avg_pool2d(x, node.kernel, node.stride, node.padding, node.ceil_mode, True)
    if isinstance(node, ir.GlobalPool):
        return x.mean(dim=(2, 3), keepdim=True)
    if isinstance(node, ir.AdaptivePool):
        return F.adaptive_avg_pool2d(x, node.output_size)
    if isinstance(node, ir.Upsample):
        if node.mode == "nearest":
            return F.interpolate(x, scale_factor=node.scale, mode="nearest")
        return F.interpolate(x, scale_factor=node.scale, mode="bilinear", align_corners=False)
    if isinstance(node, ir.Add | ir.Concat):  # one channel: a concat's union is a sum
        return sum(inputs[1:], inputs[0])
    if isinstance(node, ir.Mul):
        return math.prod(inputs[1:], start=inputs[0])
    if isinstance(node, ir.Flatten):
        return x.flatten(1)
    if isinstance(node, ir.Linear):
        return x.sum(dim=1, keepdim=True)
    if isinstance(node, ir.Softmax):
        assert node.axis == 1
        return x
    return x  # batch norm, activations, dropout, LRN, channel pooling, identity, heads


def measure(network: ir.Network, targets: list[str], side: tuple[int, int]
            ) -> dict[str, tuple[tuple[int, int], tuple[int, int]] | None]:
    """Rows and columns of the input that each target's centre output reads (None: all)."""
    image = torch.ones(1, 1, *side, dtype=torch.float64, requires_grad=True)
    values: dict[str, torch.Tensor] = {}
    wanted = set(targets)
    for node in network.nodes:
        if isinstance(node, ir.Input):
            values[node.name] = image
        elif all(name in values for name in node.inputs):
            values[node.name] = _forward(node, [values[name] for name in node.inputs])
        if wanted <= values.keys():
            break
    found: dict[str, tuple[tuple[int, int], tuple[int, int]] | None] = {}
    for name in targets:
        out = values[name]
        centre = tuple((size - 1) // 2 for size in out.shape[2:])
        (grad,) = torch.autograd.grad(out[(0, 0, *centre)], image, retain_graph=True)
        mask = grad[0, 0] != 0
        rows = torch.nonzero(mask.any(dim=1)).flatten()
        cols = torch.nonzero(mask.any(dim=0)).flatten()
        found[name + "@centre"] = centre  # type: ignore[assignment]
        if len(rows) == 0:  # a deconv position between its kernel's taps reads nothing
            found[name] = ((0, -1), (0, -1))
            continue
        box = ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])))
        found[name] = None if box == ((0, side[0] - 1), (0, side[1] - 1)) else box
    return found


def _spatial(network: ir.Network) -> list[str]:
    return [n.name for n in network.nodes if n.shape is not None and len(n.shape) == 3]


def _targets(network: ir.Network, fields: dict[str, receptive.Field], most: int = 10
             ) -> list[str]:
    """Labelled tensors, merges whose branches differ and the last spatial tensor, at most
    ``most`` of them spread over the network (each costs a backward pass at a large size)."""
    spatial = _spatial(network)
    names = {network.tensors[label] for label in network.tensors} & set(spatial)
    merges = [n for n in spatial if fields[n].branches]
    names |= set(merges[:: max(1, len(merges) // 4)])
    names.add(spatial[-1])
    chosen = [n for n in spatial if n in names]
    if len(chosen) > most:
        step = len(chosen) / most
        chosen = sorted({chosen[int(i * step)] for i in range(most)} | {chosen[-1]},
                        key=chosen.index)
    return chosen


def _agree(network: ir.Network, fields: dict[str, receptive.Field], targets: list[str],
           side: tuple[int, int]) -> None:
    measured = measure(network, targets, side)
    for name in targets:
        field = fields[name]
        centre = measured[name + "@centre"]
        if field.whole:
            assert measured[name] is None, name
            continue
        try:
            expected = receptive.interval(field, centre)  # type: ignore[arg-type]
        except ValueError:
            assert measured[name] == ((0, -1), (0, -1)), name
            continue
        rows, cols = expected
        if rows[0] <= 0 and rows[1] >= side[0] - 1 and cols[0] <= 0 and cols[1] >= side[1] - 1:
            assert measured[name] is None, name  # adaptive pooling over the whole map
            continue
        assert expected[0][0] >= 0 and expected[0][1] < side[0], (name, "grow the input")
        assert expected[1][0] >= 0 and expected[1][1] < side[1], (name, "grow the input")
        assert measured[name] == expected, name


def _large_enough(network: ir.Network, fields: dict[str, receptive.Field]) -> int:
    sizes = [max(receptive.extent(f) or (0,)) + 4 * int(max(receptive.jump(f) or (1,)))
             for f in fields.values() if f.local]
    return max(sizes) + 16


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_spec_agrees_with_the_gradient(path: Path) -> None:
    declared = cnndsl.load(path)
    side = _large_enough(declared, receptive.fields(declared))
    channels = declared.node(declared.inputs[0]).shape[0]
    resized = cnndsl.check(path, input=f"{channels}x{side}x{side}")
    # a dense layer fixes the input size; without adaptive pooling the fields do not depend on
    # it, so the declared network's fields hold at the larger measuring size too
    network = resized.network if resized.ok else declared
    assert resized.ok or not any(isinstance(n, ir.AdaptivePool) for n in declared.nodes)
    fields = receptive.fields(network)
    _agree(network, fields, _targets(network, fields), (side, side))


def test_resnet50_layer4_is_427_at_stride_32() -> None:
    network = cnndsl.load(ROOT / "specs" / "resnet50.cnn")
    field = network.node("layer4").receptive_field
    assert field is not None
    assert (field.size, field.jump, field.offset) == ((427, 427), (32, 32), (0, 0))
    assert network.node("fc").receptive_field.whole  # type: ignore[union-attr]


def test_branches_that_differ_are_named() -> None:
    network = cnndsl.load(ROOT / "specs" / "fcn8s.cnn")
    field = network.node("fuse_pool4").receptive_field
    assert field is not None
    assert field.branches == {"upscore2": (436, 436), "score_pool4": (100, 100)}
    assert field.size == (436, 436)


def test_squeeze_excitation_reads_the_whole_input_but_keeps_its_local_window() -> None:
    network = cnndsl.load(ROOT / "specs" / "seresnet50.cnn")
    field = network.node("layer4").receptive_field
    assert field is not None
    assert field.whole and field.size is None and field.local_size == (427, 427)


def test_every_ir_kind_has_a_rule() -> None:
    kinds = {cls.kind for cls in ir.NODE_KINDS}
    assert kinds == set(receptive.RULES)


def test_textbook_recurrence_for_a_conv_chain() -> None:
    # r_out = r_in + (k - 1) d j_in; j_out = j_in s; start moves by ((k - 1) d / 2 - p) j_in
    axis = receptive.IDENTITY_AXIS
    for kernel, stride, pad, dilation in ((7, 2, 3, 1), (3, 2, 1, 1), (3, 1, 2, 2), (5, 3, 0, 1)):
        before = axis
        after = receptive.compose(before, receptive.window(kernel, stride, pad, dilation))
        assert after is not None and after.period == 1
        low, high = after.at(0)  # type: ignore[misc]
        b_low, b_high = before.at(0)  # type: ignore[misc]
        assert high - low == (b_high - b_low) + (kernel - 1) * dilation * before.jump
        assert after.jump == before.jump * stride
        axis = after


def test_odd_bilinear_factor_reads_one_pixel_where_the_source_lands_on_it() -> None:
    axis = receptive.compose(receptive.IDENTITY_AXIS, receptive.bilinear(3))
    assert axis is not None and axis.period == 3
    assert [axis.at(i) for i in range(3)] == [(-1, 0), (0, 0), (0, 1)]


# ---------------------------------------------------------------------------------------------
# random chains

_LAYER = st.one_of(
    st.builds(lambda k, s, p, d: f"conv 1 {k}x{k} /{s} pad {min(p, k // 2)} dilation={d}",
              st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3)),
    st.builds(lambda kh, kw, s: f"conv 1 {kh}x{kw} /{s} pad same",
              st.integers(1, 4), st.integers(1, 4), st.just(1)),
    st.builds(lambda k, s, p, c: f"{'maxpool' if c % 2 else 'avgpool'} {k}x{k} /{s} pad "
              f"{min(p, k // 2)}" + (" ceil" if c > 1 else ""),
              st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.integers(0, 3)),
    st.builds(lambda k, s, p, d: f"deconv 1 {k}x{k} /{s} pad {min(p, (k - 1) * d)} dilation={d}",
              st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2)),
    st.builds(lambda s, mode: f"upsample {s} {mode}", st.integers(2, 3),
              st.sampled_from(["nearest", "bilinear"])),
    st.just("relu"),
    st.just("residual { conv 1 3x3 pad 1 -> conv 1 3x3 pad 1 }"),
    st.just("residual { conv 1 1x1 }"),
    st.just("concat { conv 1 5x5 pad 2 | maxpool 3x3 /1 pad 1 | identity }"),
)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(_LAYER, min_size=1, max_size=7))
def test_random_chains_agree_with_the_gradient(layers: list[str]) -> None:
    body = "\n  ".join(f"l{i}: {layer}" for i, layer in enumerate(layers))
    text = f"network chain {{\n  input image: 1 x H x W\n  {body}\n}}\n"
    symbolic = cnndsl.check(text)
    if not symbolic.ok:  # a window larger than its padded input, for instance
        return
    assert symbolic.network is not None
    fields = receptive.fields(symbolic.network)
    side = _large_enough(symbolic.network, fields)
    # the fields do not depend on the size (no adaptive pooling here): measure at a large one
    result = cnndsl.check(text, input=f"1x{side}x{side}")
    if not result.ok:
        return
    assert result.network is not None
    assert receptive.fields(result.network) == fields
    labels = [result.network.tensors[f"l{i}"] for i in range(len(layers))]
    _agree(result.network, fields, labels, (side, side))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(kernel=st.integers(1, 6), stride=st.integers(1, 4), pad=st.integers(0, 3),
       before=st.integers(1, 3))
def test_transposed_convolution_every_output_position(kernel: int, stride: int, pad: int,
                                                      before: int) -> None:
    # each output position of a deconv after a strided conv, not only the centre; the map is
    # linear, so one pixel per batch element gives its column of the Jacobian
    pad = min(pad, kernel - 1)
    axis = receptive.compose(receptive.IDENTITY_AXIS, receptive.window(3, before, 1))
    assert axis is not None
    after = receptive.compose(axis, receptive.transposed(kernel, stride, pad))
    assert after is not None
    basis = torch.eye(64, dtype=torch.float64).reshape(64, 1, 1, 64)
    y = F.conv_transpose2d(F.conv2d(F.pad(basis, (1, 1, 0, 0)), _ones(1, 3), stride=(1, before)),
                           _ones(1, kernel), stride=(1, stride), padding=(0, pad))
    reads = y[:, 0, 0, :] != 0  # [input pixel, output index]
    for index in range(8, y.shape[-1] - 8):
        cols = torch.nonzero(reads[:, index]).flatten()
        expected = after.at(index)
        if expected is None:
            assert len(cols) == 0
        else:
            assert (int(cols[0]), int(cols[-1])) == expected


def test_check_shows_the_receptive_field_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    out = io.StringIO()
    assert cli.main(["check", str(ROOT / "specs" / "resnet50.cnn"), "--rf"], out=out) == 0
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if line.split()[:2] == ["path", "kind"])
    assert header.split()[-3:] == ["rf", "jump", "offset"]
    row = next(line for line in lines if line.split()[0] == "layer4.2.relu3")
    assert row.split()[-3:] == ["427", "32", "0"]
    plain = io.StringIO()
    cli.main(["check", str(ROOT / "specs" / "resnet50.cnn")], out=plain)
    assert " rf " not in plain.getvalue()
