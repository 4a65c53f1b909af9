"""Corpora written by the charrnn project, and the manifest of named public corpora."""
