"""The fake DIRAC and BelleDIRAC packages read the gbasf2 stand-in's state through this module."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gbasf2_standin  # noqa: F401  (re-exported for the fake packages)
