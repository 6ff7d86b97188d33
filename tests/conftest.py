"""Suite-wide rules: tests never touch the network and never write to the user's cache."""

from __future__ import annotations

import os
import tempfile

# Set at import so subprocesses started by tests (CLI runs) inherit it too.
os.environ["CODESIGN_OFFLINE"] = "1"
os.environ.setdefault("CODESIGN_CACHE", tempfile.mkdtemp(prefix="codesign-test-cache-"))
# Calibrated profiles written by tests land here, never in the user's ~/.local/share/codesign/profiles.
os.environ.setdefault("CODESIGN_PROFILE_HOME", tempfile.mkdtemp(prefix="codesign-test-profiles-"))
