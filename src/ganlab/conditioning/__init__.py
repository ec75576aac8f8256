"""Conditioning kinds: what G and D receive besides z and x (see ``base.py``)."""
