"""BelleDIRAC's userCreds decorator, faked: the stand-in needs no credentials beyond its proxy."""

import functools


def userCreds(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        return function(*args, **kwargs)

    return call
