// The TextMate grammar on every spec of the repository: each file tokenizes to its end, and the
// words that matter get their scopes (keywords, definitions, labels, layers, numbers, comments).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const test = require("node:test");
const oniguruma = require("vscode-oniguruma");
const vsctm = require("vscode-textmate");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const GRAMMAR = path.resolve(__dirname, "..", "syntaxes", "cnn.tmLanguage.json");

function specs() {
  const found = [];
  const walk = (folder) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".cnn")) found.push(full);
    }
  };
  walk(path.join(ROOT, "specs"));
  walk(path.join(ROOT, "tests", "specs"));
  return found.sort();
}

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName !== "source.cnn") return null;
      return vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR);
    },
  });
  return registry.loadGrammar("source.cnn");
}

// Every token of a text: { line, text, scopes }.
function tokenize(grammar, text) {
  const tokens = [];
  let stack = vsctm.INITIAL;
  text.split("\n").forEach((line, number) => {
    const result = grammar.tokenizeLine(line, stack);
    assert.ok(!result.stoppedEarly, `line ${number + 1} stopped early`);
    let end = 0;
    for (const token of result.tokens) {
      assert.equal(token.startIndex, end, `line ${number + 1}: tokens leave a gap`);
      end = token.endIndex;
      tokens.push({ line: number + 1, text: line.slice(token.startIndex, token.endIndex),
                    scopes: token.scopes });
    }
    assert.ok(end >= line.length, `line ${number + 1} is not tokenized to its end`);
    stack = result.ruleStack;
  });
  return tokens;
}

// The scopes of the tokens spelled `text` on a line (a word may occur twice: `relu: relu`).
function scopeOf(tokens, line, text) {
  const found = tokens.filter((t) => t.line === line && t.text === text);
  assert.ok(found.length, `no token '${text}' on line ${line}`);
  return found.map((t) => t.scopes.join(" ")).join(" | ");
}

// What the spec's own lines say each word must be coloured as.
function expectations(text) {
  const wanted = [];
  const layerWords = new Set(["conv", "bn", "relu", "maxpool", "linear", "gap", "flatten",
    "avgpool", "dropout", "lrn", "sepconv", "dwconv", "upsample", "detect", "leakyrelu", "softmax",
    "sigmoid", "identity", "deconv", "boxes", "tanh"]);
  text.split("\n").forEach((line, index) => {
    const number = index + 1;
    const code = line.replace(/"[^"]*"/g, (s) => " ".repeat(s.length));
    const comment = code.indexOf("#");
    const body = comment >= 0 ? code.slice(0, comment) : code;
    if (comment >= 0) wanted.push([number, line.slice(comment), "comment.line.number-sign.cnn"]);
    let match = body.match(/^\s*(network|block)\s+([A-Za-z_]\w*)/);
    if (match) {
      wanted.push([number, match[1], `storage.type.${match[1]}.cnn`]);
      wanted.push([number, match[2], `entity.name.function.${match[1]}.cnn`]);
    }
    match = body.match(/^\s*import\s+("[^"]*")/) && line.match(/^\s*import\s+("[^"]*")/);
    if (match) wanted.push([number, match[1], "string.quoted.double.import.cnn"]);
    match = body.match(/^\s*([A-Za-z_]\w*)\s*:(?!=)/);
    if (match && !["input"].includes(match[1])) {
      wanted.push([number, match[1], "entity.name.tag.label.cnn"]);
    }
    match = body.match(/^\s*input\s+([A-Za-z_]\w*)/);
    if (match) wanted.push([number, "input", "keyword.other.input.cnn"]);
    if (/^\s*expect\b/.test(body)) wanted.push([number, "expect", "keyword.other.expect.cnn"]);
    for (const size of body.matchAll(/(?<![\w.])\d+(?:x\d+)+(?![\w.])/g)) {
      wanted.push([number, size[0], "constant.numeric.size.cnn"]);
    }
    for (const arrow of body.matchAll(/->/g)) {
      wanted.push([number, arrow[0], "keyword.operator.arrow.cnn"]);
    }
    for (const word of body.matchAll(/(?<![\w.=])([a-z][a-z0-9_]*)\b(?!\s*[:=(])/g)) {
      if (layerWords.has(word[1])) wanted.push([number, word[1], "support.function.layer.cnn"]);
    }
  });
  return wanted;
}

test("every spec tokenizes and its key words get their scopes", async () => {
  const grammar = await loadGrammar();
  const files = specs();
  assert.ok(files.length >= 15, `only ${files.length} specs found under ${ROOT}`);
  let checked = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    const tokens = tokenize(grammar, text);
    for (const [line, word, scope] of expectations(text)) {
      const scopes = scopeOf(tokens, line, word);
      assert.ok(scopes.includes(scope),
                `${path.relative(ROOT, file)}:${line}: '${word}' is ${scopes}, not ${scope}`);
      checked += 1;
    }
  }
  assert.ok(checked > 500, `only ${checked} scopes checked`);
});

test("a hand-written line gets every scope it should", async () => {
  const grammar = await loadGrammar();
  const text = [
    'import "blocks/resnet.cnn"',
    "const width = 64",
    "network n(classes = 10) {",
    "  input image: 3 x 224 x 224",
    "  stem: conv width 7x7 /2 pad 3 -> bn -> relu  # the stem",
    "  up: upsample 2x bilinear",
    "  body: residual { conv 8 3x3 pad same } -> bottleneck(64, stride = 2) x 3",
    "  expect params <= 25M",
    "}",
  ].join("\n");
  const tokens = tokenize(grammar, text);
  const cases = [
    [1, "import", "keyword.control.import.cnn"],
    [1, '"blocks/resnet.cnn"', "string.quoted.double.import.cnn"],
    [2, "const", "storage.modifier.const.cnn"],
    [2, "width", "variable.other.constant.cnn"],
    [2, "64", "constant.numeric.integer.cnn"],
    [3, "network", "storage.type.network.cnn"],
    [3, "n", "entity.name.function.network.cnn"],
    [3, "classes", "variable.parameter.cnn"],
    [4, "input", "keyword.other.input.cnn"],
    [4, "image", "variable.other.tensor.cnn"],
    [4, "x", "keyword.operator.repeat.cnn"],
    [5, "stem", "entity.name.tag.label.cnn"],
    [5, "conv", "support.function.layer.cnn"],
    [5, "7x7", "constant.numeric.size.cnn"],
    [5, "/", "keyword.operator.stride.cnn"],
    [5, "pad", "keyword.other.pad.cnn"],
    [5, "->", "keyword.operator.arrow.cnn"],
    [5, "# the stem", "comment.line.number-sign.cnn"],
    [6, "2x", "constant.numeric.scale.cnn"],
    [6, "bilinear", "constant.language.word.cnn"],
    [7, "residual", "keyword.control.composite.cnn"],
    [7, "same", "constant.language.word.cnn"],
    [7, "bottleneck", "entity.name.function.call.cnn"],
    [7, "stride", "variable.parameter.cnn"],
    [8, "expect", "keyword.other.expect.cnn"],
    [8, "<=", "keyword.operator.comparison.cnn"],
    [8, "25M", "constant.numeric.quantity.cnn"],
  ];
  for (const [line, word, scope] of cases) {
    assert.ok(scopeOf(tokens, line, word).includes(scope), `${line}: '${word}' is not ${scope}`);
  }
});
