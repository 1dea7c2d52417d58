"""A workflow whose graph depends on an environment variable read when it is loaded (very common: a sample size).

GRAPH_N (default 2) parts, then their count. A job that rebuilds Whole without GRAPH_N would build another task.
"""

import os

import b2box as b2luigi

N = int(os.environ.get("GRAPH_N", "2"))


class Part(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("part.txt")

    def run(self):
        with open(self.get_output_file_name("part.txt"), "w") as handle:
            handle.write(str(self.index))


class Whole(b2luigi.Task):
    def requires(self):
        for index in range(N):
            yield Part(index=index)

    def output(self):
        yield self.add_to_output("whole.txt")

    def run(self):
        with open(self.get_output_file_name("whole.txt"), "w") as handle:
            handle.write(str(len(self.get_input_file_names("part.txt"))))


if __name__ == "__main__":
    b2luigi.process(Whole(), workers=4)
