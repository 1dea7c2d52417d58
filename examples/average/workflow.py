"""The classic b2luigi example: draw 100 random numbers, then average them.

Written for b2luigi; the only change is the import line. Run it with

    b2box run examples/average/workflow.py --workers 4

Results land in examples/average/results/ (see settings.json).
"""

import random

import b2box as b2luigi


class RandomNumber(b2luigi.Task):
    """Draws one random number, seeded by its index so reruns are reproducible."""

    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("number.txt")

    def run(self):
        number = random.Random(self.index).random()
        with open(self.get_output_file_name("number.txt"), "w") as handle:
            handle.write(f"{number}\n")


class Average(b2luigi.Task):
    """Averages the numbers of all RandomNumber tasks."""

    count = b2luigi.IntParameter(default=100)

    def requires(self):
        for index in range(self.count):
            yield RandomNumber(index=index)

    def output(self):
        yield self.add_to_output("average.txt")

    def run(self):
        numbers = []
        for path in self.get_input_file_names("number.txt"):
            with open(path) as handle:
                numbers.append(float(handle.read()))
        with open(self.get_output_file_name("average.txt"), "w") as handle:
            handle.write(f"{sum(numbers) / len(numbers)}\n")


if __name__ == "__main__":
    b2luigi.process(Average(), workers=4)
