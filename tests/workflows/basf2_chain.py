"""A b2luigi-style basf2 workflow: a Basf2PathTask per input dataset, then a merge of their ntuples.

On the grid (batch_system gbasf2 for Analysis) each Analysis task is a project over its dataset, and its output
``ntuple.root`` is the folder of the project's downloaded files; locally (or on a batch system) it processes the
input files given by $BASF2_CHAIN_INPUT (a stand-in ROOT file). Merge runs hadd locally on whatever it gets.
"""

import os

import b2box as b2luigi
from b2box.basf2 import Basf2PathTask, HaddTask

DATASETS = [name for name in os.environ.get("BASF2_CHAIN_DATASETS", "A").split(",") if name]


class Analysis(Basf2PathTask):
    dataset = b2luigi.Parameter()
    cut = b2luigi.FloatParameter(default=5.2)

    def create_path(self):
        import basf2

        path = basf2.create_path()
        if os.environ.get("BASF2_CHAIN_INPUT"):
            path.add_module("RootInput", inputFileNames=[os.environ["BASF2_CHAIN_INPUT"]])
        path.add_module("ParticleLoader", decayStrings=["B0:all"], cut=f"Mbc > {self.cut}")
        path.add_module("VariablesToNtuple", particleList="B0:all", fileName="ntuple.root", treeName="B0")
        return path

    def output(self):
        yield self.add_to_output("ntuple.root")


class Merge(HaddTask):
    def requires(self):
        for dataset in DATASETS:
            yield Analysis(dataset=dataset)


if __name__ == "__main__":
    b2luigi.process(Merge(), workers=int(os.environ.get("BASF2_CHAIN_WORKERS", "4")))
