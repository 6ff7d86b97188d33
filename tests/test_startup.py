"""codesign.runtime.startup: a codesign process imports torch with the collector paused, then frozen."""

import json
import subprocess
import sys


def _run(code: str, cwd) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_torch_imported_without_collections_and_frozen(tmp_path):
    """Hook installed: no collection runs during `import torch`; after it the collector is on again,
    torch's objects are frozen, and the module keeps its own loader. Without the hook (the control),
    the same import collects and freezes nothing."""
    code = ("import gc, json, sys\nfrom codesign.runtime import startup\n"
            "runs = []\ngc.callbacks.append(lambda phase, info: runs.append(1) if phase == 'start' else None)\n"
            "if sys.argv[1] == 'hook':\n    startup.install()\n"
            "import torch\n"
            "print(json.dumps({'collections': len(runs), 'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),"
            " 'loader': type(torch.__spec__.loader).__name__, 'hooks_left': sum(type(f).__name__ == '_TorchFinder'"
            " for f in sys.meta_path)}))\n")
    hooked = json.loads(subprocess.run([sys.executable, "-c", code, "hook"], capture_output=True, text=True,
                                       check=True, cwd=tmp_path).stdout)
    plain = json.loads(subprocess.run([sys.executable, "-c", code, "plain"], capture_output=True, text=True,
                                      check=True, cwd=tmp_path).stdout)
    assert hooked["collections"] == 0 and hooked["enabled"] and hooked["frozen"] > 50_000
    assert hooked["loader"] == plain["loader"] == "SourceFileLoader" and hooked["hooks_left"] == 0
    assert plain["collections"] > 50 and plain["frozen"] == 0


def test_console_main_installs_it_and_main_does_not(tmp_path):
    """`codesign` as a process (console_main) leaves the hook waiting for torch; `main()` called from a
    user's interpreter does not install it."""
    code = ("import gc, json, sys\nimport codesign.cli as cli\n"
            "sys.argv = ['codesign', 'devices']\n"
            "cli.console_main() if PROCESS else cli.main(['devices'])\n"
            "print(json.dumps(sum(type(f).__name__ == '_TorchFinder' for f in sys.meta_path)))\n")
    assert _run(code.replace("PROCESS", "True"), tmp_path) == 1
    assert _run(code.replace("PROCESS", "False"), tmp_path) == 0
