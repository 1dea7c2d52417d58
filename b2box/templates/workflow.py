"""A starter b2box workflow: simulate a few runs per energy, then merge them.

Run it with `b2box run workflow.py --workers 2`; see what is left with
`b2box status workflow.py`. Outputs go to results/ (see settings.json).
"""

import b2box


class Simulate(b2box.Task):
    """One simulated run; replace run() with your own work."""

    energy = b2box.FloatParameter()
    run_number = b2box.IntParameter()

    def output(self):
        yield self.add_to_output("events.txt")

    def run(self):
        with open(self.get_output_file_name("events.txt"), "w") as handle:
            handle.write(f"energy={self.energy} run={self.run_number}\n")


@b2box.inherits(Simulate, without="run_number")
class Merge(b2box.Task):
    """All runs of one energy, in one file."""

    runs = b2box.IntParameter(default=3)

    def requires(self):
        for run_number in range(self.runs):
            yield self.clone(Simulate, run_number=run_number)

    def output(self):
        yield self.add_to_output("merged.txt")

    def run(self):
        with open(self.get_output_file_name("merged.txt"), "w") as merged:
            for path in sorted(self.get_input_file_names("events.txt")):
                with open(path) as part:
                    merged.write(part.read())


class All(b2box.WrapperTask):
    """Everything this workflow makes."""

    def requires(self):
        for energy in (10.58, 10.86):
            yield Merge(energy=energy)


if __name__ == "__main__":
    b2box.process(All())
