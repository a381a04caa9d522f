import sys
from pathlib import Path

# broken_adapters.py lives beside the tests; make it importable as a plug-in module.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))
