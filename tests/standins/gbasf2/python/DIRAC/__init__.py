"""A fake DIRAC (the gbasf2 stand-in's): only what b2luigi's and b2box's helper scripts call."""

version = "v7r3p1"


class _Logger:
    def setLevel(self, level):
        self.level = level


gLogger = _Logger()
