"""Text to surface AST: the Lark grammar, the parser and the AST node classes."""
