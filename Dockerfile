# The b2box image: b2box installed in a virtual environment, for CI pipelines and for running workflows
# anywhere Docker runs:   docker run --rm -v "$PWD:$PWD" -w "$PWD" b2box b2box run workflow.py
#
# Build it with ci/build-image.sh, which first makes a wheelhouse of b2box and its dependencies in
# dist/wheelhouse, so the build needs no network (and pins what goes in). The base image is the official
# python:3.11-slim-bookworm; on machines without a registry the testbed makes an image of that name from
# Debian's archive (python3 ci/testbed.py up).
FROM python:3.11-slim-bookworm

COPY dist/wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/b2box \
    && /opt/b2box/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse b2box \
    && rm -rf /tmp/wheelhouse \
    && /opt/b2box/bin/b2box --version

ENV PATH=/opt/b2box/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /work
CMD ["b2box", "--help"]
