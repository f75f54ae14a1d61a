"""Loaders that turn a corpus into (features, labels, groups) or an annotation table.

Import the submodules directly (trompa_mer.datasets.deam, .emotify, .generic, .annotations, .amg1608).
"""
