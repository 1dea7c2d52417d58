"""``b2box report``: one self-contained HTML page (and ``--json``) from a run's figures.

``facts`` is the interface: whoever reads a run's records fills ``RunFacts``; ``page`` renders it. The two sides
meet only there, so the page can be tested with made-up runs and the reader without a browser.
"""
