"""Empty stand-in for the XRootD bindings (see ../README.md)."""
