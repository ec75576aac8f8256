"""Each trick through the real training step: one file per trick (see runs.py)."""
