"""One module per batch system; each is a pure renderer of submissions, a pure parser of status answers with its
state map, and the thin I/O that runs the commands (see ``base`` for what every backend provides)."""
