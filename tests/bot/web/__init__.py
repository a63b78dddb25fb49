"""Tests of the staff web UIs and their auth layer."""
