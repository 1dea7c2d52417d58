"""N grid projects (one Basf2PathTask per dataset) for the gbasf2 benchmark, runnable by b2box and by b2luigi.

BENCH_IMPL (b2box|b2luigi), BENCH_N. Settings (the stand-in's setup script, retries) come from settings.json.
"""

import importlib
import os

IMPL = os.environ.get("BENCH_IMPL", "b2box")
b2luigi = importlib.import_module(IMPL)
if IMPL == "b2box":
    from b2box.basf2 import Basf2PathTask
else:
    from b2luigi.basf2_helper.tasks import Basf2PathTask

N = int(os.environ.get("BENCH_N", "20"))


class Analysis(Basf2PathTask):
    dataset = b2luigi.IntParameter()
    batch_system = "gbasf2"

    @property
    def gbasf2_input_dataset(self):
        return f"/belle/MC/ds{self.dataset:02d}"

    def create_path(self):
        import basf2

        path = basf2.create_path()
        path.add_module("VariablesToNtuple", particleList="B0:all", fileName="ntuple.root", treeName="B0")
        return path

    def output(self):
        yield self.add_to_output("ntuple.root")


class AllProjects(b2luigi.WrapperTask):
    def requires(self):
        for index in range(N):
            yield Analysis(dataset=index)


if __name__ == "__main__":
    b2luigi.process(AllProjects(), batch=True, workers=N + 1)
