"""Analyses of a checked network: parameters, multiply-accumulates, memory and summaries."""
