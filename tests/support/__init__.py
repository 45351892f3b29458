"""Helpers shared by the test modules: plain functions, classes and constants, no fixtures.

Fixtures live in the ``conftest.py`` files and reach the tests by pytest's injection; anything
a test imports comes from this package. No test module or conftest imports another one
(``tests/unit/test_test_layout.py`` keeps it so), which keeps the fixture graph explicit.
"""
