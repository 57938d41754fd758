"""Kopf handlers for Experiments and Trials (filled in below)."""
