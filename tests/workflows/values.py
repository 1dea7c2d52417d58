"""One task per value of $VALUES (a JSON list), each writing the repr of its value: for values that are hard on
paths and scripts (line breaks, quotes, ``:`` and ``,``)."""

import json
import os

import b2box as b2luigi


class Echo(b2luigi.Task):
    value = b2luigi.Parameter()

    def output(self):
        yield self.add_to_output("out.txt")

    def run(self):
        with open(self.get_output_file_name("out.txt"), "w") as handle:
            handle.write(repr(self.value))


class Every(b2luigi.WrapperTask):
    def requires(self):
        for value in json.loads(os.environ["VALUES"]):
            yield Echo(value=value)


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", "results")
    b2luigi.set_setting("batch_system", "local")
    b2luigi.process(Every(), workers=4)
