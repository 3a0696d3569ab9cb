"""The pygls wiring: each LSP message handed to the functions of ``features``/``completion``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from cnndsl import __version__
from cnndsl.lsp import completion, features, formatting
from cnndsl.lsp.workspace import Workspace


class CnnServer(LanguageServer):
    """A language server holding one ``Workspace``; ``last_check`` (wall and CPU milliseconds of
    the last check) is for the latency benchmark."""

    def __init__(self) -> None:
        super().__init__("cnndsl", __version__,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.cnn = Workspace()
        self.last_check = {"wall_ms": 0.0, "cpu_ms": 0.0}

    def publish(self, uri: str) -> None:
        """Check a document and send its diagnostics."""
        start, cpu = time.perf_counter(), time.process_time()
        analysis = self.cnn.analysis(uri)
        found = features.diagnostics(analysis)
        self.last_check = {"wall_ms": (time.perf_counter() - start) * 1000,
                           "cpu_ms": (time.process_time() - cpu) * 1000}
        version = self.workspace.get_text_document(uri).version
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=version))

    def refresh(self, uri: str) -> None:
        """Take a document's current text, check it and every open document that imports it."""
        document = self.workspace.get_text_document(uri)
        self.cnn.update(uri, document.source)
        self.publish(uri)
        for other in self.cnn.dependents(uri):
            self.publish(other)

    def refresh_soon(self, uri: str) -> None:
        """Check after the messages already read: of several queued edits only the last is
        checked (typing faster than a large spec checks must not build a backlog)."""
        version = self.workspace.get_text_document(uri).version

        def latest() -> None:
            if self.workspace.get_text_document(uri).version == version:
                self.refresh(uri)

        asyncio.get_running_loop().call_soon(latest)

    def format(self, uri: str, wanted: types.Range | None) -> list[types.TextEdit]:
        """The edits of ``cnndsl fmt``'s layout (options such as tab size do not change it: one
        layout for everyone, as ``fmt`` writes it)."""
        try:
            return formatting.formatting(self.workspace.get_text_document(uri).source, wanted)
        except formatting.FormatError as error:
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error,
                message=f"cnndsl: the formatter failed, the document is left as it is: {error}"))
            return []

    def snippets(self) -> bool:
        """Whether the client inserts snippets."""
        text = self.client_capabilities.text_document
        item = text.completion.completion_item if text and text.completion else None
        return bool(item and item.snippet_support)


def build() -> CnnServer:
    """A server with every feature registered."""
    server = CnnServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CnnServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CnnServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.refresh_soon(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CnnServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CnnServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        dependents = ls.cnn.dependents(uri)
        ls.cnn.close(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri,
                                                                            diagnostics=[]))
        for other in dependents:
            ls.publish(other)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: CnnServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        return features.hover(ls.cnn.analysis(uri), params.position, ls.cnn.others(uri))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: CnnServer, params: types.DefinitionParams) -> list[types.Location]:
        return features.definition(ls.cnn.analysis(params.text_document.uri), params.position)

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def references(ls: CnnServer, params: types.ReferenceParams) -> list[types.Location]:
        uri = params.text_document.uri
        return features.references(ls.cnn.analysis(uri), params.position,
                                   params.context.include_declaration, ls.cnn.others(uri))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=[" ", "(", "=", ">", '"', "/"]))
    def complete(ls: CnnServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        ls.cnn.update(uri, ls.workspace.get_text_document(uri).source)
        return completion.completion(ls.cnn.analysis(uri), params.position, ls.snippets())

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: CnnServer, params: types.DocumentSymbolParams) -> list[Any]:
        return list(features.document_symbols(ls.cnn.analysis(params.text_document.uri)))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    def actions(ls: CnnServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return features.code_actions(ls.cnn.analysis(params.text_document.uri), params.range)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def format_document(ls: CnnServer,
                        params: types.DocumentFormattingParams) -> list[types.TextEdit]:
        return ls.format(params.text_document.uri, None)

    @server.feature(types.TEXT_DOCUMENT_RANGE_FORMATTING)
    def format_range(ls: CnnServer,
                     params: types.DocumentRangeFormattingParams) -> list[types.TextEdit]:
        return ls.format(params.text_document.uri, params.range)

    @server.command("cnndsl.lastCheckMilliseconds")
    def last_check(ls: CnnServer, *args: Any) -> dict[str, float]:
        return ls.last_check

    return server


def serve() -> None:
    """Run the server on standard input and output until the client exits."""
    build().start_io()
