import sys

from codesign.cli import console_main

sys.exit(console_main())
