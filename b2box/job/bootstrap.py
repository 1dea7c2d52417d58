"""The first Python a job runs, inside its container: find b2box, then hand over to b2box.job.main.

The wrapper (job.sh) runs this file by its path with the image's Python::

    python3 bootstrap.py IMAGE HOST_PYTHON_VERSION SITE_DIRS JOB_FILE [JOB_ID]

If the image has its own b2box, that one is used; otherwise the host's installation, bound into the container at
SITE_DIRS (colon-separated), is added to the path. An image whose Python is too old or cannot load b2box gets one
line naming the image and the fix, and exit status 72.

This file must stay parsable by any Python, even Python 2 (no f-strings, no annotations), so that an ancient
python3 in an image produces that message instead of a syntax error; it imports only the standard library.
"""

import sys

EXIT_BAD_ENVIRONMENT = 72
HTTP_LIBRARIES = ("requests", "requests_unixsocket", "tornado")

if __name__ == "__main__" and sys.path and sys.path[0]:
    del sys.path[0]  # run by its path: this file's folder (b2box/job) must not shadow other modules


def fail(message):
    """One line naming what is wrong and the fix; exit 72."""
    sys.stderr.write("b2box: " + message + "\n")
    sys.exit(EXIT_BAD_ENVIRONMENT)


def keep_http_libraries_away():
    """A job never talks to a central scheduler: while luigi is imported, its HTTP client's libraries are kept
    away (luigi then falls back to urllib), which halves a job's start in an image. The task may import them."""
    hidden = [name for name in HTTP_LIBRARIES if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    return hidden


def release(hidden):
    """Let the task import the HTTP libraries again."""
    for name in hidden:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def import_b2box(image, host_version, site_dirs):
    """b2box.job.main: the image's own b2box, else the host's, mounted at site_dirs."""
    try:
        import b2box.job.main as job_main

        return job_main
    except ImportError as first:
        here = "%d.%d" % sys.version_info[:2]
        if sys.version_info < (3, 11) or not site_dirs:
            fail(
                "%s: %s is Python %s without b2box (%s); b2box needs Python 3.11 or newer to be mounted from "
                "the host (which runs %s). Fix: run 'b2box build-env' to add b2box to the image, or pip "
                "install b2box inside it." % (image, sys.executable, here, first, host_version)
            )
    import site

    for folder in site_dirs:
        site.addsitedir(folder)
    try:
        import b2box.job.main as job_main

        return job_main
    except ImportError as second:
        fail(
            "%s: the host's b2box does not load in this image (%s). Fix: run 'b2box build-env' to "
            "add b2box to the image, or pip install b2box inside it." % (image, second)
        )


def watched(job_file, job_id):
    """Run the job in a child of this process, which waits for it and records what it used, even when it is killed
    (b2box/usage.py, loaded by its path: b2box is not found yet, and this process stays small)."""
    if sys.version_info < (3, 11):
        return  # usage.py needs Python 3.11; an older image's Python gets its message from import_b2box below
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "usage.py")
    try:
        spec = importlib.util.spec_from_file_location("b2box_usage", path)
        usage = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(usage)
    except (ImportError, OSError, SyntaxError):
        return  # (a job that brought only this file along): run unwatched
    usage.watched_fork(job_file, job_id)


def main(argv):
    """``IMAGE HOST_PYTHON_VERSION SITE_DIRS JOB_FILE [JOB_ID]``: run the job."""
    if len(argv) > 3:
        watched(argv[3], argv[4] if len(argv) > 4 else "")
    image, host_version = argv[0], argv[1]
    site_dirs = [folder for folder in argv[2].split(":") if folder]
    hidden = keep_http_libraries_away()
    job_main = import_b2box(image, host_version, site_dirs)
    release(hidden)
    job_main.main(argv[3:])


if __name__ == "__main__":
    main(sys.argv[1:])
