"""DIRAC.Core.Base.Script, faked: enabling the configuration service does nothing here."""


def enableCS():
    return None


def parseCommandLine(ignoreErrors=False):
    return None
