"""Imported first by the search workers' fork server (``codesign.cli.search.WORKER_PRELOAD``): installs
:func:`codesign.runtime.startup.install` there, so the server imports torch with the collector paused and
frozen after, as the search process does. Workers forked from it inherit the frozen objects: their
collections skip them, and never write to those objects' pages (which stay shared with the server)."""

from codesign.runtime import startup

startup.install()
