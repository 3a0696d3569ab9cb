"""The workspace: open documents over files, cached reads and parses, analyses kept or redone."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import BLOCKS, RESNET50, ROOT, open_text

from cnndsl import ir
from cnndsl.analysis import receptive
from cnndsl.compiler import check_text
from cnndsl.lsp import features, workspace
from cnndsl.lsp.workspace import Workspace, file_to_uri, uri_to_file

TEXT = RESNET50.read_text()


def test_uris_and_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a b#c.cnn"
    assert uri_to_file(file_to_uri(str(path))) == str(path)
    assert uri_to_file("untitled:Untitled-1") == "untitled:Untitled-1"


def test_a_warm_recheck_reads_and_parses_nothing_unchanged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    space = Workspace()
    open_text(space, RESNET50)
    reads: list[Path] = []
    real = workspace.read_source
    monkeypatch.setattr(workspace, "read_source", lambda p: reads.append(p) or real(p))
    parses = space.loader.full_parses
    analysis = open_text(space, RESNET50, TEXT.replace("conv 64 7x7", "conv 65 7x7"))
    assert reads == [] and space.loader.full_parses == parses
    assert [d.code.slug for d in analysis.diagnostics] == ["expect-failed"]


def test_an_import_changed_on_disk_is_read_again(tmp_path: Path) -> None:
    library = tmp_path / "lib.cnn"
    library.write_text("block unit(w) {\n  conv w 3x3 pad 1\n}\n")
    main = tmp_path / "main.cnn"
    main.write_text('import "lib.cnn"\nnetwork n {\n  input image: 3 x 8 x 8\n  unit(8)\n'
                    "  expect params == 224\n}\n")
    space = Workspace()
    assert open_text(space, main).diagnostics == []
    library.write_text("block unit(w) {\n  conv w 3x3 pad 1 bias=false\n}\n")
    stat = library.stat()
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    analysis = space.analysis(main.resolve().as_uri())
    assert [d.code.slug for d in analysis.diagnostics] == ["expect-failed"]


def test_an_open_import_is_read_from_the_editor_and_its_users_rechecked() -> None:
    space = Workspace()
    users = open_text(space, RESNET50)
    assert users.diagnostics == []
    broken = BLOCKS.read_text().replace("conv width*4 1x1", "conv width*0 1x1")
    open_text(space, BLOCKS, broken)
    assert space.dependents(BLOCKS.resolve().as_uri()) == [users.uri]
    [diagnostic] = features.diagnostics(space.analysis(users.uri))
    assert "expected a number above zero" in diagnostic.message
    space.close(BLOCKS.resolve().as_uri())
    assert space.analysis(users.uri).diagnostics == []


def test_a_file_of_blocks_is_a_library_and_every_network_is_checked(tmp_path: Path) -> None:
    assert open_text(Workspace(), BLOCKS).diagnostics == []
    two = tmp_path / "two.cnn"
    two.write_text("network a {\n  input image: 3 x 8 x 8\n  cnov 8 1x1\n}\n"
                   "network b {\n  input image: 3 x 8 x 8\n  conv 0 1x1\n}\n")
    analysis = open_text(Workspace(), two)
    assert [r.network and r.network.name for r in analysis.results] == [None, None]
    assert sorted(d.code.slug for d in analysis.diagnostics) == ["bad-value", "unknown-layer"]


def test_a_comment_edit_keeps_the_analysis() -> None:
    space = Workspace()
    first = open_text(space, RESNET50)
    network = first.results[0].network
    edited = TEXT.replace("  flatten\n", "  flatten  # to features\n")
    second = open_text(space, RESNET50, edited)
    assert second.results[0].network is network and second.text == edited


def test_while_the_text_does_not_parse_names_come_from_the_last_parse() -> None:
    space = Workspace()
    open_text(space, RESNET50)
    analysis = open_text(space, RESNET50, TEXT.replace("  bn1: bn\n", "  bn1: bn (\n"))
    assert analysis.module is None and analysis.last_module is not None
    assert [d.code.slug for d in analysis.diagnostics] == ["syntax"]


_PIECES = ["conv 64 3x3", " -> relu", "\n", "\n  ", "bn", "x: ", "# note\n", "}", "(", "7",
           "0", "/2", "pad 1", "  y: add(a, b)\n", "expect params == 1\n",
           "expect receptive field(layer2) >= 100\n"]


@st.composite
def _edits(draw: st.DrawFn, text: str) -> str:
    """The text after an edit: a number changed, or a piece of spec inserted over a stretch."""
    numbers = [m.span() for m in re.finditer(r"\b\d+\b", text)]
    if numbers and draw(st.booleans()):
        start, end = draw(st.sampled_from(numbers))
        return text[:start] + str(draw(st.integers(0, 300))) + text[end:]
    start = draw(st.integers(0, len(text)))
    length = draw(st.integers(0, 30))
    insert = draw(st.lists(st.sampled_from(_PIECES), max_size=2).map("".join))
    return text[:start] + insert + text[start + length:]


def _full(text: str, path: Path) -> workspace.Analysis:
    """What a fresh analysis finds: no kept parse, no reparse."""
    return workspace.analyze(text, path.resolve().as_uri(), workspace.CachingLoader({}))


@pytest.mark.parametrize("path", [RESNET50, ROOT / "specs" / "googlenet.cnn",
                                  ROOT / "specs" / "yolo_tiny.cnn"], ids=lambda p: p.name)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_warm_path_finds_what_a_full_check_finds(path: Path, data: st.DataObject) -> None:
    """Edits one after another in one workspace (reparses, kept imports, receptive fields left
    for the hover) give the diagnostics and IR of checking each text afresh."""
    space = Workspace()
    text = path.read_text()
    open_text(space, path)
    for _ in range(3):
        text = data.draw(_edits(text), label="text")
        warm = open_text(space, path, text)
        full = _full(text, path)
        assert warm.diagnostics == full.diagnostics
        assert features.diagnostics(warm) == features.diagnostics(full)
        for fast, fresh in zip(warm.results, full.results, strict=True):
            assert (fast.network is None) == (fresh.network is None)
            if fast.network is not None:
                # `cnndsl check`'s IR, receptive fields included, once the hover has made them
                checked = check_text(text, str(path), network=fast.network.name).network
                assert checked is not None
                receptive.annotate(fast.network)
                assert ir.to_json(fast.network) == ir.to_json(checked)
