"""The stand-in's variable manager (basf2's ``variables.variables``): aliases only."""

from __future__ import annotations


class _Variable:
    def __init__(self, name: str) -> None:
        self.name = name


class _Manager:
    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}

    def addAlias(self, alias: str, variable: str) -> bool:
        self._aliases[alias] = variable
        return True

    def getAliasNames(self) -> list[str]:
        return list(self._aliases)

    def getVariable(self, name: str) -> _Variable:
        return _Variable(self._aliases.get(name, name))


variables = _Manager()
