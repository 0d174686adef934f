"""The fuzz suite imports the shared launcher (tests/stack.py) from the directory above."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
