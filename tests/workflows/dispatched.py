"""A workflow whose run() segfaults inside a dispatched child process."""

import ctypes
import os

import b2box as b2luigi


class Crashes(b2luigi.DispatchableTask):
    def output(self):
        yield self.add_to_output("never.txt")

    def process(self):
        with open(self.get_output_file_name("never.txt"), "w") as handle:
            handle.write("partial")
        ctypes.string_at(0)  # segfault


class Survives(b2luigi.Task):
    def output(self):
        yield self.add_to_output("fine.txt")

    @b2luigi.dispatch
    def run(self):
        print("hello from the dispatched run", flush=True)
        with open(self.get_output_file_name("fine.txt"), "w") as handle:
            handle.write(f"{os.getpid()} {os.getcwd()} {os.environ.get('GREETING', '')}")


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", os.environ["RESULTS"])
    b2luigi.set_setting("log_dir", os.path.join(os.environ["RESULTS"], "logs"))
    if os.environ.get("WORKING_DIR"):
        b2luigi.set_setting("working_dir", os.environ["WORKING_DIR"])
        b2luigi.set_setting("env", {"GREETING": "hi"})
    b2luigi.process([Crashes(), Survives()])
