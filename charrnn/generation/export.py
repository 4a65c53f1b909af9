"""Kept for imports written before `charrnn.export` existed: the SavedModel writer lives in
`charrnn.export.saved_model`."""

from charrnn.export.saved_model import export_saved_model  # noqa: F401
