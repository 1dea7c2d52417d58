"""b2luigi 1.3's remote-target examples (its docs, features/remote_targets), unchanged but for the import and the
server address, which comes from REMOTE_SERVER (root://host:port or http://host:port)."""

import os

import b2box as b2luigi
from b2box import RemoteTarget, XRootDSystem

SERVER = os.environ["REMOTE_SERVER"]
RESULTS = os.environ.get("REMOTE_RESULTS", "/examples")


def file_system():
    return XRootDSystem(SERVER) if SERVER.startswith("root") else b2luigi.WebDAVSystem(SERVER)


class MyTask(b2luigi.Task):  # the first example: RemoteTarget passed to add_to_output
    def run(self):
        file_name = "Hello_world.txt"
        target = self._get_output_target(file_name)
        with target.temporary_path() as temp_path:  # noqa: SIM117 - as b2luigi's docs write it
            with open(temp_path, "w") as f:
                f.write("Hello World")

    def output(self):
        fs = file_system()
        yield self.add_to_output("Hello_world.txt", RemoteTarget, file_system=fs)


class MyDefaultTask(b2luigi.Task):  # the second: default_task_target_class and target_class_kwargs
    index = b2luigi.IntParameter()

    @property
    def result_dir(self):
        return f"{RESULTS}/on_server"

    @property
    def xrootdsystem(self):
        return file_system()

    @property
    def default_task_target_class(self):
        return b2luigi.RemoteTarget

    @property
    def target_class_kwargs(self):
        return {
            "file_system": self.xrootdsystem,
        }

    def output(self):
        yield self.add_to_output("Hello_world.txt")

    @b2luigi.on_temporary_files
    def run(self):
        if self.index == int(os.environ.get("REMOTE_FAIL", "-1")):
            with open(self.get_output_file_name("Hello_world.txt"), "w") as f:
                f.write("half")
            raise RuntimeError(f"task {self.index} fails after writing")
        with open(self.get_output_file_name("Hello_world.txt"), "w") as f:
            f.write(f"Hello World {self.index}")


class MyMixedTask(b2luigi.Task):  # the third: local and remote outputs of one task
    def output(self):
        # adding a local file target
        yield self.add_to_output("local_file.txt")

        # adding a remote file target
        fs = file_system()
        yield self.add_to_output("remote_file.txt", b2luigi.RemoteTarget, file_system=fs)

    def run(self):
        # accessing the targets works as usual
        local_file_path = self.get_output_file_name("local_file.txt")
        remote_file_path = self.get_output_file_name("remote_file.txt")
        for path in (local_file_path, remote_file_path):
            with open(path, "w") as f:
                f.write("mixed")


class Reader(b2luigi.Task):  # remote inputs, read as local copies under on_temporary_files
    def requires(self):
        for index in range(int(os.environ.get("REMOTE_TASKS", "3"))):
            yield MyDefaultTask(index=index)

    def output(self):
        yield self.add_to_output("all.txt")

    @b2luigi.on_temporary_files
    def run(self):
        texts = []
        for path in self.get_input_file_names("Hello_world.txt"):
            with open(path) as handle:
                texts.append(handle.read())
        with open(self.get_output_file_name("all.txt"), "w") as handle:
            handle.write("\n".join(sorted(texts)))


class All(b2luigi.WrapperTask):
    def requires(self):
        yield MyTask()
        yield MyMixedTask()
        yield Reader()


if __name__ == "__main__":
    b2luigi.set_setting("result_dir", f"{RESULTS}/default")
    b2luigi.process(All(), workers=2)
