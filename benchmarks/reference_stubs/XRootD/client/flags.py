"""Empty stand-ins for the flag enums b2luigi imports (see ../../README.md)."""


class DirListFlags:
    STAT = 0


class OpenFlags:
    READ = 0


class MkDirFlags:
    MAKEPATH = 0
