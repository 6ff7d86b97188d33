"""Pipelines that wire training + cost + search (imported by CLI handlers, never at ``--help`` time)."""
