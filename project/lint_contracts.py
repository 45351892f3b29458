"""A custom import-linter contract: ORM managers are used only in repository modules.

import-linter checks imports, but the layer rule of ARCHITECTURE.md is about attribute access
(``Model.objects``), so this contract reads the source of every module in the given packages
and reports each ``.objects`` / ``._default_manager`` / ``._base_manager`` outside the allowed
modules. It runs with the other contracts in ``lint-imports`` (``make test``). Dev tooling only:
nothing imports this module at run time.
"""

from __future__ import annotations

import ast
import importlib.util
from fnmatch import fnmatchcase

import grimp
from importlinter import Contract, ContractCheck, fields, output

MANAGER_ATTRIBUTES = frozenset({"objects", "_default_manager", "_base_manager"})


class OrmOnlyInRepositoriesContract(Contract):
    type_name = "orm_in_repositories"

    source_packages = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        violations: list[str] = []
        for package in self.source_packages:  # type: ignore[attr-defined]
            for module in sorted({package, *graph.find_descendants(package)}):
                if any(fnmatchcase(module, pattern) for pattern in self.allowed_modules):  # type: ignore[attr-defined]
                    continue
                violations.extend(_manager_uses(module))
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(violation)
        output.new_line()
        output.print("Move the query into the app's repository module and call it from there.")


def _manager_uses(module: str) -> list[str]:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read(), filename=spec.origin)
    return [
        f"{module}:{node.lineno} uses .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in MANAGER_ATTRIBUTES
    ]
