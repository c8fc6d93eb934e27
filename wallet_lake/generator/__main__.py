import sys

from wallet_lake.generator.cli import main

sys.exit(main())
