"""Tests of ganlab.families."""
