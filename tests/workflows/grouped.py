"""Short tasks packed several to a job (tasks_per_job); some fail or crash on purpose (GROUP_FAIL, GROUP_CRASH)."""

import json
import os
import signal

import b2box as b2luigi


class Piece(b2luigi.Task):
    index = b2luigi.IntParameter()
    tasks_per_job = int(os.environ.get("GROUP_SIZE", "4"))

    def output(self):
        yield self.add_to_output("piece.json")

    def run(self):
        import requests  # noqa: F401 - a task may use what b2box keeps away from luigi while a job starts
        import tornado  # noqa: F401

        if str(self.index) == os.environ.get("GROUP_FAIL"):
            raise RuntimeError(f"piece {self.index} fails on purpose")
        if str(self.index) == os.environ.get("GROUP_CRASH"):
            os.kill(os.getpid(), signal.SIGSEGV)
        with open(self.get_output_file_name("piece.json"), "w") as handle:
            json.dump({"pid": os.getpid(), "ppid": os.getppid()}, handle)


class AllPieces(b2luigi.WrapperTask):
    def requires(self):
        for index in range(int(os.environ.get("GROUP_N", "8"))):
            yield Piece(index=index)


if __name__ == "__main__":
    b2luigi.set_setting("batch_system", "local")
    b2luigi.set_setting("result_dir", "results")
    b2luigi.process(AllPieces(), workers=100)
