// The cnndsl extension: the TextMate grammar colours .cnn files; this starts `cnndsl lsp`
// (configurable: cnndsl.server.command / cnndsl.server.args) as a language client over stdio.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("cnndsl");
  const command = config.get("server.command", "cnndsl");
  const args = config.get("server.args", ["lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "cnndsl",
    "cnndsl language server",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "cnn" }, { scheme: "untitled", language: "cnn" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.cnn") },
    },
  );
  context.subscriptions.push(
    vscode.commands.registerCommand("cnndsl.restartServer", () => client.restart()),
  );
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `cnndsl: cannot start '${command} ${args.join(" ")}' (${error.message}); ` +
        "install it with pip install 'cnndsl[lsp]' or set cnndsl.server.command",
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
