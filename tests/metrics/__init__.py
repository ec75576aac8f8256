"""Tests of ganlab.metrics."""
