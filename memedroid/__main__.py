import sys

from memedroid.cli import main

sys.exit(main())
