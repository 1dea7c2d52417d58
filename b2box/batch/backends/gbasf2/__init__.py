"""The Belle II grid through gbasf2: one project per task, one status query per poll for all of the run's projects.

A module per step of a project's life: :mod:`.session` (gbasf2's environment, the grid proxy, questions to DIRAC
through ``dirac_query.py``, which runs inside that environment), :mod:`.projects` (the pure parts: names, the
submit command, the steering file, what DIRAC's states mean), :mod:`.backend` (submitting and following projects)
and :mod:`.download` (logs, provenance and the dataset of a finished project).

gbasf2 is tested against a stand-in (tests/standins/gbasf2) that reproduces its documented behaviour, not against
the real grid.
"""
