"""A b2luigi gbasf2 workflow: a Basf2PathTask per dataset as a grid project, then a merge of their ntuples here.

With ``batch_system = "gbasf2"`` (settings.json) each Analysis task is a grid project over /belle/MC/<dataset>,
and its output ``ntuple.root`` is the folder of the project's downloaded files; with a local batch system it
processes the file $GRID_LOCAL_INPUT instead. Merge runs hadd as a local job on all of them. GRID_DATASETS lists
the datasets (default A).
"""

import os

import b2box as b2luigi
from b2box.basf2 import Basf2PathTask, HaddTask

DATASETS = [name for name in os.environ.get("GRID_DATASETS", "A").split(",") if name]


class Analysis(Basf2PathTask):
    dataset = b2luigi.Parameter()

    @property
    def gbasf2_input_dataset(self):
        return f"/belle/MC/{self.dataset}"

    def create_path(self):
        import basf2

        path = basf2.create_path()
        if os.environ.get("GRID_LOCAL_INPUT"):
            path.add_module("RootInput", inputFileNames=[os.environ["GRID_LOCAL_INPUT"]])
        path.add_module("ParticleLoader", decayStrings=["B0:all"])
        path.add_module("VariablesToNtuple", particleList="B0:all", fileName="ntuple.root", treeName="B0")
        return path

    def output(self):
        yield self.add_to_output("ntuple.root")


class Merge(HaddTask):
    batch_system = "local"

    def requires(self):
        for dataset in DATASETS:
            yield Analysis(dataset=dataset)


if __name__ == "__main__":
    b2luigi.process(Merge(), workers=int(os.environ.get("GRID_WORKERS", "50")))
