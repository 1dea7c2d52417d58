"""A fake BelleDIRAC (the gbasf2 stand-in's). Its version is that of the gbasf2 release it stands in for."""

version = "v5r9"
