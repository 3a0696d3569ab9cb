"""cnndsl: a declarative architecture language and compiler for CNNs."""
