"""A small workflow for command-line tests: a chain whose steps can be made to fail or hang."""

import os
import time

import b2box as b2luigi


class Link(b2luigi.Task):
    index = b2luigi.IntParameter()

    def requires(self):
        if self.index > 0:
            yield Link(index=self.index - 1)

    def output(self):
        yield self.add_to_output("link.txt")

    def run(self):
        with open(self.get_output_file_name("link.txt"), "w") as handle:
            handle.write("partial ")
            handle.flush()
            if os.environ.get("CHAIN_FAIL") == str(self.index):
                raise RuntimeError(f"link {self.index} failed on purpose")
            if os.environ.get("CHAIN_HANG") == str(self.index):
                with open(os.environ["CHAIN_READY"], "w") as ready:
                    ready.write(str(os.getpid()))
                time.sleep(600)
            handle.write(str(self.index))


class Chain(b2luigi.WrapperTask):
    length = b2luigi.IntParameter(default=3)

    def requires(self):
        yield Link(index=self.length - 1)


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", os.environ.get("CHAIN_RESULTS", "results"))
    b2luigi.process(Chain())
