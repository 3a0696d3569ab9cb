"""Pictures of a network: DOT text, SVG through Graphviz, and a self-contained HTML report."""
