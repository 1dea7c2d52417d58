"""BelleDIRAC's initializeCS, faked (mandatory in new gbasf2, b2luigi#208)."""


def initializeCS():
    return None
