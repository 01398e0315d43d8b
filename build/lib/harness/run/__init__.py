"""Executing cells and whole plans."""
