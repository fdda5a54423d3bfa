"""One module per Cloud Function; `main.py` at the root exposes their entry points."""
