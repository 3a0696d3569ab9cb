"""The language server through a real client over stdio (pytest-lsp starts ``cnndsl lsp``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import apply
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from cnndsl.syntax.format import format_source

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = ROOT / "specs" / "resnet50.cnn"
BLOCKS = ROOT / "specs" / "blocks" / "resnet.cnn"
SERVER = [sys.executable, "-m", "cnndsl", "lsp"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER,
                                              server_env={"PYTHONPATH": str(ROOT)}))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    params = types.InitializeParams(capabilities=client_capabilities("visual-studio-code"),
                                    root_uri=ROOT.as_uri())
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


def _position(text: str, needle: str, offset: int = 0) -> types.Position:
    before = text[: text.index(needle) + offset]
    return types.Position(line=before.count("\n"), character=len(before.rsplit("\n", 1)[-1]))


async def _open(client: LanguageClient, path: Path, text: str) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="cnn", version=1, text=text)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


@pytest.mark.asyncio
async def test_a_broken_channel_count_is_reported_at_its_range(client: LanguageClient) -> None:
    text = RESNET50.read_text()
    uri = await _open(client, RESNET50, text)
    assert list(client.diagnostics[uri]) == []
    start = _position(text, "conv 64 7x7", len("conv "))
    end = types.Position(line=start.line, character=start.character + 2)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=start, end=end), text="0")]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [diagnostic] = client.diagnostics[uri]
    assert diagnostic.range == types.Range(
        start=start, end=types.Position(line=start.line, character=start.character + 1))
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.code == "bad-value"
    assert "expected a number above zero, got 0" in diagnostic.message


@pytest.mark.asyncio
async def test_quick_edits_end_with_the_diagnostics_of_the_last(client: LanguageClient) -> None:
    text = RESNET50.read_text()
    uri = await _open(client, RESNET50, text)
    start = _position(text, "relu: relu", len("relu: "))
    versions = ["rleu", "relu", "conv 0 1x1", "reul"]
    word = "relu"
    for version, new in enumerate(versions, start=2):
        end = types.Position(line=start.line, character=start.character + len(word))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=start, end=end), text=new)]))
        word = new
    # Edits may be checked together; the last check is the last edit's, whatever came before.
    for _ in range(60):
        found = list(client.diagnostics.get(uri, ()))
        if len(found) == 1 and "'reul'" in found[0].message:
            break
        with contextlib.suppress(TimeoutError):  # a notification read before the wait began
            await asyncio.wait_for(
                client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 5)
    [diagnostic] = client.diagnostics[uri]
    assert diagnostic.code == "unknown-layer" and "'reul'" in diagnostic.message


@pytest.mark.asyncio
async def test_hover_shows_a_tensor_shape(client: LanguageClient) -> None:
    text = RESNET50.read_text()
    uri = await _open(client, RESNET50, text)
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=_position(text, "layer2:", 2)))
    assert result is not None
    assert isinstance(result.contents, types.MarkupContent)
    assert "N x 512 x 28 x 28" in result.contents.value


@pytest.mark.asyncio
async def test_completion_after_a_convolution_offers_its_parameters(
        client: LanguageClient) -> None:
    text = RESNET50.read_text().replace("  bn1: bn\n", "  bn1: bn\n  conv 64 3x3 \n")
    uri = await _open(client, RESNET50, text)
    position = _position(text, "conv 64 3x3 \n", len("conv 64 3x3 "))
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    labels = {item.label for item in items}
    assert {"stride=", "padding=", "dilation=", "groups=", "bias=", "pad"} <= labels
    assert not labels & {"filters=", "kernel="}  # given already


@pytest.mark.asyncio
async def test_definition_of_a_block_lands_in_the_blocks_file(client: LanguageClient) -> None:
    text = RESNET50.read_text()
    uri = await _open(client, RESNET50, text)
    result = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=_position(text, "bottleneck(64)", 3)))
    assert isinstance(result, list)
    [target] = result
    assert isinstance(target, types.Location)
    assert target.uri == BLOCKS.resolve().as_uri()
    blocks = BLOCKS.read_text()
    assert target.range.start == _position(blocks, "bottleneck(width")


def test_the_server_imports_neither_torch_nor_onnx() -> None:
    import subprocess

    code = ("import sys; from cnndsl.lsp import server, completion; "
            "from cnndsl.lsp.workspace import Workspace; from lsprotocol import types; "
            f"w = Workspace(); u = {RESNET50.as_uri()!r}; "
            f"w.update(u, open({str(RESNET50)!r}).read()); "
            "a = w.analysis(u); server.features.hover(a, types.Position(line=7, character=3)); "
            "completion.completion(a, types.Position(line=7, character=3)); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)}, timeout=900)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.asyncio
async def test_formatting_gives_the_layout_of_fmt(client: LanguageClient) -> None:
    text = RESNET50.read_text().replace("  bn1: bn\n", "  bn1:   bn\n").replace(
        "  flatten\n", "      flatten  \n")
    uri = await _open(client, RESNET50, text)
    document = types.TextDocumentIdentifier(uri=uri)
    options = types.FormattingOptions(tab_size=4, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(text_document=document, options=options))
    assert edits is not None and len(edits) == 2  # the two lines, not the whole document
    assert apply(text, edits) == format_source(text) == RESNET50.read_text()
    line = _position(text, "bn1:").line
    selected = await client.text_document_range_formatting_async(
        types.DocumentRangeFormattingParams(
            text_document=document, options=options,
            range=types.Range(start=types.Position(line=line, character=0),
                              end=types.Position(line=line, character=4))))
    assert selected is not None
    result = apply(text, selected)
    assert "  bn1: bn\n" in result and "      flatten  \n" in result
