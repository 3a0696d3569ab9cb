"""The language server: ``cnndsl lsp`` over stdio (needs the ``lsp`` extra, pygls).

``workspace`` keeps documents, reads and parses; ``incremental`` reparses around an edit;
``index`` finds the names of a file; ``features`` and ``completion`` answer each request as a
function of an analysis; ``server`` is the thin pygls wiring.
"""
