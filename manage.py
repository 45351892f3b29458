#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "run_worker":
        # Worker processes hold connections differently from the ASGI server (ADR 0002).
        os.environ.setdefault("ACADEMY_PROCESS", "worker")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
