"""Tests of ganlab.data."""
