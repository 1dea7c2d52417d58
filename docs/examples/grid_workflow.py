"""A Belle II analysis on the grid: a gbasf2 project reconstructs B0 candidates in the dataset named by
gbasf2_input_dataset (settings.json), its ntuples are downloaded, and a merge runs here with hadd.

Run it where basf2 and gbasf2 are set up: b2box run grid_workflow.py --batch
"""

import b2box as b2luigi
from b2box.basf2 import Basf2PathTask, HaddTask


class Reconstruction(Basf2PathTask):
    """One grid project; its output ntuple.root is the folder of the files the project's jobs wrote."""

    sample = b2luigi.Parameter(default="mixed")  # results/sample=mixed/ntuple.root, apart from the merged file

    def create_path(self):
        import basf2  # only where the task runs: the workflow loads without basf2

        path = basf2.create_path()
        path.add_module("RootInput")  # gbasf2 hands each job its input files
        path.add_module("ParticleLoader", decayStrings=["B0:all"])
        path.add_module("VariablesToNtuple", particleList="B0:all", fileName="ntuple.root", treeName="B0")
        return path

    def output(self):
        yield self.add_to_output("ntuple.root")


class Merge(HaddTask):
    """hadd of the downloaded ntuples, on this machine."""

    batch_system = "local"

    def requires(self):
        yield Reconstruction()


if __name__ == "__main__":
    b2luigi.process(Merge())
