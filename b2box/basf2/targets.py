"""ROOT files as outputs: complete only when they exist and hold something."""

from __future__ import annotations

import os

import luigi


class ROOTLocalTarget(luigi.LocalTarget):
    """A ROOT file output: it exists only when the file is there and not empty (with ROOT importable, when it holds
    at least one key, as b2luigi checks)."""

    def exists(self) -> bool:
        if not super().exists():
            return False
        if os.path.isdir(self.path):  # a grid dataset: a folder of files
            return any(os.scandir(self.path))
        if os.path.getsize(self.path) == 0:
            return False
        try:
            import ROOT  # only where ROOT is installed
        except ImportError:
            return True
        handle = ROOT.TFile.Open(self.path)
        try:
            return bool(handle) and len(handle.GetListOfKeys()) > 0
        finally:
            if handle:
                handle.Close()
