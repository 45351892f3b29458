"""The shared kernel of the domains: the error types, the AWS clients and the log context.

Not a business area (docs/adr/0008-shared-kernel-in-domains-common.md): it holds no models and
no business rules, and it imports no other ``domains.*`` app (an import-linter contract in
pyproject.toml). Every layer above it may use it.
"""
