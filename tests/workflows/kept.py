"""A workflow for the kept graph's tests: raw files listed from a folder, a count from a module beside the script
and from the environment, and a line appended to ``graph_built.log`` each time the graph is built."""

import os
import time

import kept_sizes  # a module of the user's own, beside the script

import b2box

HERE = os.path.dirname(os.path.abspath(__file__))


class Raw(b2box.ExternalTask):
    name = b2box.Parameter()

    def output(self):
        return b2box.LocalTarget(os.path.join(HERE, "raw", self.name))


class Number(b2box.Task):
    index = b2box.IntParameter()

    def output(self):
        yield self.add_to_output("number.txt")

    def run(self):
        if os.environ.get("KEPT_HANG") == str(self.index):  # a test kills the run here
            with open(os.environ["KEPT_READY"], "w") as ready:
                ready.write("running")
            time.sleep(600)
        with open(self.get_output_file_name("number.txt"), "w") as handle:
            handle.write(f"{self.index}\n")


class Total(b2box.Task):
    def requires(self):
        with open(os.path.join(HERE, "graph_built.log"), "a") as log:
            log.write("built\n")
        for name in sorted(os.listdir(os.path.join(HERE, "raw"))):
            yield Raw(name=name)
        for index in range(kept_sizes.COUNT + int(os.environ.get("KEPT_EXTRA", "0"))):
            yield Number(index=index)

    def output(self):
        yield self.add_to_output("total.txt")

    def run(self):
        total = 0
        for path in self.get_input_file_names("number.txt"):
            with open(path) as handle:
                total += int(handle.read())
        with open(self.get_output_file_name("total.txt"), "w") as handle:
            handle.write(f"{total}\n")


if __name__ == "__main__":
    b2box.set_setting("result_dir", os.path.join(HERE, "results"))
    b2box.process(Total(), workers=1)
