"""The layout of the tests themselves: fixtures come by injection, helpers from tests/support.

A test module that imports another test module or a conftest file couples the two: moving a
test breaks an unrelated one, and the fixture graph no longer shows who provides what. So no
test module or conftest imports a test module or a conftest, and a helper is imported from
``tests.support`` (or, used by one directory only, from a helper module beside its tests).
The scan reads the source (AST), so it also sees imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench")
SUPPORT = "tests.support"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_") or last.endswith("_test")


def _in_support(module: str) -> bool:
    return module == SUPPORT or module.startswith(SUPPORT + ".")


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imported_modules(path: Path, module: str, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of a module under ``root`` in the file, relative ones
    resolved; ``from X import name`` counts as X.name when that is a module, else as X."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((node.lineno, submodule if _is_module(submodule, root) else source))
    unique = dict.fromkeys(found)
    return [(line, name) for line, name in unique if _is_module(name, root)]


def layout_problems(root: Path, scanned: tuple[str, ...] = SCANNED) -> list[str]:
    """Every import under ``root/<scanned>`` that breaks the rule, as ``file:line: reason``."""
    problems = []
    for top in scanned:
        for path in sorted((root / top).rglob("*.py")):
            module = _module_name(path, root)
            importer_is_test = _is_test_or_conftest(module)
            directory = module.rpartition(".")[0]
            for line, target in _imported_modules(path, module, root):
                if target.split(".")[0] != "tests":
                    continue
                where = f"{path.relative_to(root)}:{line}"
                if _is_test_or_conftest(target):
                    problems.append(f"{where}: imports {target}; move the helper to tests.support")
                elif (
                    importer_is_test
                    and not _in_support(target)
                    and target != "tests"
                    and target.rpartition(".")[0] != directory
                ):
                    problems.append(
                        f"{where}: imports {target} from another directory; helpers "
                        "shared between directories live in tests.support"
                    )
    return problems


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"tests/__init__.py": "", "tests/support/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    return root


def test_no_test_module_or_conftest_imports_another_one_or_a_helper_outside_tests_support() -> None:
    # given the project's tests and benchmarks
    # when their imports are scanned
    problems = layout_problems(ROOT)

    # then every helper comes from tests.support and every fixture by injection
    assert problems == []


def test_the_scan_reports_imports_of_test_modules_conftests_and_foreign_helpers(
    tmp_path: Path,
) -> None:
    # given a tree where tests import a conftest, a test module (relatively, inside a
    # function) and another directory's helper, and a support module imports a conftest,
    # beside allowed imports (tests.support, a helper beside its tests)
    root = _tree(
        tmp_path,
        {
            "tests/conftest.py": "PASSWORD = 'x'\n",
            "tests/support/members.py": "from tests.support import tokens\n",
            "tests/support/bad.py": "from tests import conftest\n",
            "tests/support/tokens.py": "",
            "tests/a/helper.py": "",
            "tests/a/test_one.py": (
                "from tests.conftest import PASSWORD\n"
                "from tests.support.members import PASSWORD as P\n"
                "from tests.a.helper import x\n"
                "def test_x():\n"
                "    from .test_two import y\n"
            ),
            "tests/a/test_two.py": "",
            "tests/b/conftest.py": "from tests.a import helper\nimport tests.a.conftest\n",
            "tests/b/test_three.py": "from tests.a.helper import x\n",
        },
    )

    # when the tree is scanned
    problems = layout_problems(root, scanned=("tests",))

    # then exactly the five crooked imports are reported, with file and line
    assert [problem.split(": imports ")[0] for problem in problems] == [
        "tests/a/test_one.py:1",
        "tests/a/test_one.py:5",
        "tests/b/conftest.py:1",
        "tests/b/test_three.py:1",
        "tests/support/bad.py:1",
    ]
    assert "tests.conftest" in problems[0]
    assert "tests.a.test_two" in problems[1]
