"""The testbed's pieces, one module per concern, behind the command line of ci/testbed.py.

common: paths, errors, logging, running commands, host packages; engine: the Docker engine; images: base images
from Debian's archive and the worker-node image; pool: the worker-node container and up/down/status; worker:
commands in the worker node and b2box installed there.
"""
