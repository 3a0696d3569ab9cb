"""Hover, definition, references, outline, diagnostics and quick fixes as pure functions."""

from __future__ import annotations

from pathlib import Path

from lsp_helpers import BLOCKS, RESNET50, open_text, position
from lsprotocol import types

from cnndsl.lsp import features
from cnndsl.lsp.workspace import Analysis, Workspace

TEXT = RESNET50.read_text()


def _hover(text: str, needle: str, offset: int = 1, path: Path = RESNET50) -> str:
    return _hover_on(open_text(Workspace(), path, text), needle, offset)


def _hover_on(analysis: Analysis, needle: str, offset: int = 1) -> str:
    result = features.hover(analysis, position(analysis.text, needle, offset))
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    return result.contents.value


def test_hover_on_a_label_shows_the_tensor_shape_and_counts() -> None:
    value = _hover(TEXT, "conv1:")
    assert "`conv1`: **N x 64 x 112 x 112**, 9,408 params, 118 M MACs" in value


def test_hover_shows_the_receptive_field_beside_shape_params_and_macs() -> None:
    # torchvision's resnet50: conv1 sees 7x7 pixels two apart; layer4 sees 427, 32 apart.
    assert "118 M MACs, receptive field 7 (jump 2)" in _hover(TEXT, "conv1:")
    assert "receptive field 427 (jump 32)" in _hover(TEXT, "layer4:")
    assert "receptive field whole" in _hover(TEXT, "fc:")
    assert "`maxpool` (pool): **N x 64 x 56 x 56**, 0 params, 0 MACs, receptive field 11 " \
        "(jump 4)" in _hover(TEXT, "maxpool 3x3")
    assert "`layer2.1`: **N x 512 x 28 x 28**, 280,064 params, 218 M MACs, receptive field 59 " \
        "(jump 8)" in _hover(TEXT, "bottleneck(128)")


def test_the_hover_field_is_the_check_s_though_the_server_computes_it_late() -> None:
    import cnndsl
    from cnndsl.analysis import receptive

    analysis = open_text(Workspace(), RESNET50)
    network = analysis.results[0].network
    assert network is not None
    assert all(node.receptive_field is None for node in network.nodes)  # left to the hover
    _hover_on(analysis, "layer3:")
    checked = cnndsl.check(RESNET50).network
    assert checked is not None
    assert [n.receptive_field for n in network.nodes] == [n.receptive_field
                                                          for n in checked.nodes]
    assert receptive.size_text(network.node("layer3").receptive_field) == "267"


def test_two_inputs_say_which_input_a_field_is_of(tmp_path: Path) -> None:
    spec = tmp_path / "two.cnn"
    text = ("network two {\n  input a: 3 x 16 x 16\n  input b: 3 x 16 x 16\n"
            "  x: a -> conv 8 3x3 pad 1\n  y: b -> conv 8 5x5 pad 2\n  s: add(x, y)\n}\n")
    spec.write_text(text)
    value = _hover(text, "y:", path=spec)
    assert "receptive field 5 (jump 1) of `b`" in value


def test_hover_on_a_labelled_chain_of_blocks_sums_its_layers() -> None:
    value = _hover(TEXT, "layer4:")
    assert "**N x 2048 x 7 x 7**" in value
    assert "14,964,736 params" in value  # torchvision's resnet50.layer4


def test_hover_on_a_layer_word_shows_its_usage_and_the_node() -> None:
    value = _hover(TEXT, "maxpool 3x3")
    assert "maxpool KERNEL" in value and "stride defaults to the kernel" in value
    assert "`maxpool` (max_pool): **N x 64 x 56 x 56**" in value or "**N x 64 x 56 x 56**" in value


def test_hover_on_a_block_call_shows_its_signature_comment_and_instances() -> None:
    value = _hover(TEXT, "bottleneck(128)")
    assert "block bottleneck(width, stride = 1)" in value
    assert "1x1 reduce, 3x3, 1x1 expand by 4" in value
    assert "blocks/resnet.cnn` line 19" in value
    assert "`layer2.1`: **N x 512 x 28 x 28**" in value and "`layer2.3`" in value


def test_hover_on_a_network_shows_its_totals() -> None:
    value = _hover(TEXT, "resnet50(")
    assert "25,557,032 params" in value and "4.09 G MACs" in value
    assert "`fc`: N x 1000" in value


def test_hover_inside_a_block_of_an_open_network_shows_every_instance() -> None:
    workspace = Workspace()
    open_text(workspace, RESNET50)
    blocks = BLOCKS.read_text()
    analysis = open_text(workspace, BLOCKS)
    others = workspace.others(analysis.uri)
    spot = position(blocks, "conv width*4", 1)
    result = features.hover(analysis, spot, others)
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    assert "`layer1.0.conv3` (conv): **N x 256 x 56 x 56**" in result.contents.value
    assert "and 8 more" in result.contents.value  # 16 bottlenecks, 8 listed


def test_definition_of_a_tensor_a_parameter_and_an_import() -> None:
    text = ("const width = 8\nnetwork n(classes = 10) {\n  input image: 3 x 8 x 8\n"
            "  a: conv width 3x3 pad 1\n  b: image -> conv width 3x3 pad 1\n  add(a, b)\n"
            "  flatten -> linear classes\n}\n")
    analysis = open_text(Workspace(), RESNET50.parent / "n.cnn", text)
    assert analysis.diagnostics == []

    def target(needle: str, offset: int, occurrence: int = 0) -> tuple[int, int]:
        [found] = features.definition(analysis, position(text, needle, offset, occurrence))
        return found.range.start.line, found.range.start.character

    assert target("add(a", 4) == (3, 2)          # a -> its label
    assert target("image ->", 1) == (2, 8)       # image -> the input
    assert target("linear classes", 8) == (1, 10)  # the network parameter
    assert target("conv width", 6, 1) == (0, 6)  # the constant
    imports = 'import "blocks/resnet.cnn"\n' + TEXT.split("\n", 4)[-1]
    analysis = open_text(Workspace(), RESNET50, imports)
    [found] = features.definition(analysis, position(imports, "blocks/", 1))
    assert found.uri == BLOCKS.resolve().as_uri()


def test_references_of_a_block_span_the_files() -> None:
    workspace = Workspace()
    analysis = open_text(workspace, RESNET50)
    found = features.references(analysis, position(TEXT, "bottleneck(64)", 2), True)
    uris = [f.uri for f in found]
    assert uris.count(RESNET50.resolve().as_uri()) == 7  # layer1 .. layer4
    assert uris.count(BLOCKS.resolve().as_uri()) == 1    # the definition
    without = features.references(analysis, position(TEXT, "bottleneck(64)", 2), False)
    assert len(without) == 7


def test_references_of_a_tensor_stay_in_its_network() -> None:
    text = ("network n {\n  input image: 3 x 8 x 8\n  a: conv 8 3x3 pad 1\n"
            "  b: image -> conv 8 3x3 pad 1\n  c: add(a, b)\n  output c, a\n}\n"
            "network m {\n  input image: 3 x 8 x 8\n  a: relu\n}\n")
    analysis = open_text(Workspace(), RESNET50.parent / "n.cnn", text)
    found = features.references(analysis, position(text, "a: conv", 0), True)
    assert [(f.range.start.line, f.range.start.character) for f in found] == [
        (2, 2), (4, 9), (5, 12)]


def test_the_outline_lists_networks_blocks_and_labelled_layers() -> None:
    analysis = open_text(Workspace(), BLOCKS.parent.parent / "googlenet.cnn")
    [network] = [s for s in features.document_symbols(analysis)
                 if s.kind == types.SymbolKind.Class]
    names = [child.name for child in network.children or []]
    assert names[:3] == ["image", "conv1", "maxpool1"]
    blocks = [s.name for s in features.document_symbols(analysis)
              if s.kind == types.SymbolKind.Function]
    assert "inception" in blocks


def test_a_misspelt_word_gets_a_quick_fix_and_other_errors_none() -> None:
    text = TEXT.replace("relu: relu", "relu: rleu").replace("conv 64 7x7", "conv 0 7x7")
    analysis = open_text(Workspace(), RESNET50, text)
    everywhere = types.Range(start=types.Position(line=0, character=0),
                             end=types.Position(line=99, character=0))
    [action] = features.code_actions(analysis, everywhere)
    assert action.title == "Change 'rleu' to 'relu'"
    assert action.edit is not None and action.edit.changes is not None
    [edit] = action.edit.changes[analysis.uri]
    assert edit.new_text == "relu" and edit.range.start == position(text, "rleu")
    assert len(features.diagnostics(analysis)) == 2


def test_an_error_inside_an_imported_block_is_shown_at_the_call() -> None:
    text = TEXT.replace("bottleneck(64) x 3", "bottleneck(0) x 3")
    analysis = open_text(Workspace(), RESNET50, text)
    [diagnostic] = features.diagnostics(analysis)
    assert diagnostic.range.start == position(text, "bottleneck(0)")
    assert "(in blocks/resnet.cnn:21:10)" in diagnostic.message
    related, call = diagnostic.related_information or []
    assert related.location.uri == BLOCKS.resolve().as_uri()
    assert related.location.range.start == types.Position(line=20, character=9)
    assert call.message.startswith("in block 'bottleneck' called at ")  # the check's own note


def test_notes_become_related_information() -> None:
    text = TEXT.replace("relu: relu", "relu: rleu")
    [diagnostic] = features.diagnostics(open_text(Workspace(), RESNET50, text))
    assert [r.message for r in diagnostic.related_information or []] == ["did you mean 'relu'?"]


def test_ranges_count_utf16_units() -> None:
    text = 'import "caf\u00e9_\U0001f600.cnn"\nnetwork n {\n  input image: 3 x 8 x 8\n  relu\n}\n'
    [diagnostic] = features.diagnostics(open_text(Workspace(), RESNET50.parent / "u.cnn", text))
    first_line = text.split("\n")[0]
    assert diagnostic.range.end.character == len(first_line.encode("utf-16-le")) // 2
    assert diagnostic.range.end.character == len(first_line) + 1  # the emoji is two units
