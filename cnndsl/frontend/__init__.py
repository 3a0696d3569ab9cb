"""The front end: spec text to IR (shapes inferred as each node is created).

Shapes are inferred during elaboration, not in a later pass, because the language needs them
while expanding: ``in`` (a block's input channel count), a convolution's input channels, and the
residual's automatic projection all depend on the shape that reaches them. The rules live in
``cnndsl/shapes.py``; ``graph.py`` applies them and turns failures into diagnostics.

Modules by job: ``imports`` (files and their definitions), ``expressions`` (constants and
arithmetic), ``naming`` (spec paths), ``arguments`` (the one binder), ``statements`` (the walk
over chains), ``layer_calls``, ``composites``, ``blocks``, ``network`` (a network body),
``graph`` (nodes and shapes), ``driver`` (the one call).
"""

from __future__ import annotations

from cnndsl.frontend.driver import elaborate

__all__ = ["elaborate"]
