"""A root task with parameters, for setting them (and choosing the task) on the command line."""

import b2box as b2luigi


class Number(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("n.txt")

    def run(self):
        with open(self.get_output_file_name("n.txt"), "w") as f:
            f.write(str(self.index))


class Total(b2luigi.Task):
    n = b2luigi.IntParameter(default=2)
    label = b2luigi.Parameter(default="x")

    def requires(self):
        for index in range(self.n):
            yield Number(index=index)

    def output(self):
        yield self.add_to_output("total.txt")

    def run(self):
        with open(self.get_output_file_name("total.txt"), "w") as f:
            f.write(str(self.n))


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", "results")
    b2luigi.process(Total())
