import sys

from advlm.cli import main

sys.exit(main())
