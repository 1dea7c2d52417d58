"""Empty stand-in for XRootD.client (see ../../README.md)."""


class FileSystem:
    """Never used by the benchmarks."""
