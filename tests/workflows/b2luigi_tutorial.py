"""An unmodified b2luigi script, in the style of b2luigi's tutorial (numbers, their average, a wrapper over both).

Nothing here names b2box: under ``b2box run`` (or ``python -m b2box``) ``b2luigi`` and its module paths are b2box's;
with a real b2luigi installed, ``python b2luigi_tutorial.py`` runs it with b2luigi. It writes which b2luigi it got.
"""

import json
import os
import random

import b2luigi
from b2luigi.core.utils import create_output_file_name, get_serialized_parameters


class MyNumberTask(b2luigi.Task):
    some_parameter = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("output_file.txt")

    def run(self):
        random.seed(self.some_parameter)
        with open(self.get_output_file_name("output_file.txt"), "w") as handle:
            handle.write(f"{random.random()}\n")


class MyAverageTask(b2luigi.Task):
    n_numbers = b2luigi.IntParameter(default=4)

    def requires(self):
        for i in range(self.n_numbers):
            yield self.clone(MyNumberTask, some_parameter=i)

    def output(self):
        yield self.add_to_output("average.txt")

    def run(self):
        numbers = []
        for path in self.get_input_file_names("output_file.txt"):
            with open(path) as handle:
                numbers.append(float(handle.read()))
        with open(self.get_output_file_name("average.txt"), "w") as handle:
            handle.write(f"{sum(numbers) / len(numbers)}\n")
        where = create_output_file_name(self, "which_b2luigi.json")
        with open(where, "w") as handle:
            json.dump({"module": getattr(b2luigi, "__file__", None) or "", "name": b2luigi.__name__, "pid": os.getpid(),
                       "parameters": get_serialized_parameters(self)}, handle)  # fmt: skip


class Everything(b2luigi.WrapperTask):
    def requires(self):
        yield MyAverageTask(n_numbers=4)


if __name__ == "__main__":
    b2luigi.process(Everything(), workers=2)
