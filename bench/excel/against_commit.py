"""The student import at this checkout against another checkout (the commit before a change),
interleaved in one session, with the django-import-export peer beside both.

    .venv/bin/python bench/excel/against_commit.py --base /work/wt/perf-base [--rounds 3]
        [--rows 10000] [--repeat 2] [--peer cached] [--profile]

Each round starts one child process per checkout (base first, then this one; the order flips
every round), each with its own virtualenv (``<checkout>/.venv``), its own code on
``sys.path`` and a throw-away database of its own (``BENCH_DATABASE_NAME`` + a suffix). A
child seeds 100,000 students of 5 other tenants (as import_bench.py does), then imports
``--rows`` new rows into fresh tenants ``--repeat`` times with that checkout's
``import_bench`` helpers, and runs the peer the same number of times on the same rows. Every
import of both checkouts and the peer must leave the same student values (checked).

Reported: medians and spread (min-max) of wall time, the one password hash and wall - hash,
statements per import, the ratio head ÷ base and ours ÷ peer, and the load average around each
child. ``--profile`` adds one cProfile'd import per checkout (top functions by cumulative and
own time) to the output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
PASSWORD = "first-login-2025"  # noqa: S105 - a benchmark fixture


def child(args: argparse.Namespace) -> None:
    root = Path(args.root).resolve()
    sys.path[:0] = [str(root / "bench" / "excel"), str(root)]
    import _setup  # type: ignore[import-not-found]
    import import_bench  # type: ignore[import-not-found]

    drop = _setup.django_on_bench_database("bench_excel_against")
    try:
        _setup.seed_students(tenants=5, per_tenant=20_000)
        from domains.students.services import students_import_rows

        def ours() -> dict[str, Any]:
            rows = import_bench.make_rows(args.rows, 0)
            tenant_id = import_bench.new_tenant("ab", 0)
            with (
                import_bench.timing_hashes() as hashed,
                import_bench.counting_statements() as statements,
            ):
                began = time.perf_counter()
                result = students_import_rows(
                    tenant_id, rows=rows, initial_password=PASSWORD, chunk_size=500
                )
                wall = time.perf_counter() - began
            counts = result.counts()
            assert counts["created"] == args.rows, counts
            assert counts["failed"] == 0, counts
            return {
                "kind": "ours",
                "wall": wall,
                "hash": hashed[0],
                "statements": statements[0],
                "values": import_bench.student_values(tenant_id),
            }

        def peer(variant: str) -> dict[str, Any]:
            from peer_import_export import (  # type: ignore[import-not-found]
                dataset_from,
                import_students,
            )

            dataset = dataset_from(import_bench.make_rows(args.rows, 0))
            tenant_id = import_bench.new_tenant(f"ab-peer-{variant}", 0)
            with import_bench.counting_statements() as statements:
                began = time.perf_counter()
                import_students(tenant_id, dataset, variant=variant)
                wall = time.perf_counter() - began
            return {
                "kind": f"peer {variant}",
                "wall": wall,
                "hash": 0.0,
                "statements": statements[0],
                "values": import_bench.student_values(tenant_id),
            }

        for _ in range(args.repeat):
            print(json.dumps(ours()), flush=True)
            for variant in args.peer:
                print(json.dumps(peer(variant)), flush=True)
        if args.profile:
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            r = ours()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(args.profile_lines)
            stats.sort_stats("tottime").print_stats(args.profile_lines)
            print(json.dumps({"kind": "profile", "wall": r["wall"], "text": out.getvalue()}))
    finally:
        drop()


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_child(label: str, root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    env = dict(os.environ)
    suffix = "head" if label == "head" else "base"
    env["BENCH_DATABASE_NAME"] = f"{env.get('BENCH_DATABASE_NAME', 'bench_excel_ab')}_{suffix}"
    env["PYTHONPATH"] = str(root)
    command = [
        str(root / ".venv" / "bin" / "python"),
        str(HERE),
        "--child",
        "--root",
        str(root),
        "--rows",
        str(args.rows),
        "--repeat",
        str(args.repeat),
        "--peer",
        *args.peer,
    ]
    if args.profile:
        command += ["--profile", "--profile-lines", str(args.profile_lines)]
    before = load()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{label} child failed ({done.returncode})")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for r in results:
        r["checkout"] = label
        r["load"] = f"{before} → {load()}"
    return results


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--base", help="the other checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--peer", nargs="*", default=["cached"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not args.base:
        parser.error("--base is required")
    checkouts = {"base": Path(args.base).resolve(), "head": HERE.parents[2]}
    results: list[dict[str, Any]] = []
    for index in range(args.rounds):
        order = ["base", "head"] if index % 2 == 0 else ["head", "base"]
        for label in order:
            print(f"{time.strftime('%H:%M:%S')} round {index + 1} {label}", file=sys.stderr)
            results += run_child(label, checkouts[label], args)

    values = {r["values"][1] for r in results if "values" in r}
    assert len(values) == 1, f"imports left different student values: {values}"
    loads = sorted({r["load"] for r in results})
    table = [
        f"{args.rows:,} new rows, {args.rounds} rounds x {args.repeat} imports per checkout, "
        "interleaved; median (min-max).\n",
        "| checkout | importer | n | wall s | hash s | wall - hash s | statements |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    medians: dict[tuple[str, str], float] = {}
    for label in ("base", "head"):
        for kind in ["ours", *(f"peer {v}" for v in args.peer)]:
            rows = [r for r in results if r["checkout"] == label and r["kind"] == kind]
            if not rows:
                continue
            own = [r["wall"] - r["hash"] for r in rows]
            medians[(label, kind)] = statistics.median(own)
            table.append(
                f"| {label} | {kind} | {len(rows)} | {summary([r['wall'] for r in rows])} | "
                f"{summary([r['hash'] for r in rows])} | {summary(own)} | "
                f"{statistics.median(r['statements'] for r in rows):.0f} |"
            )
    print("\n".join(table))
    print()
    head, base = medians[("head", "ours")], medians[("base", "ours")]
    print(f"- head ÷ base, wall - hash (medians): **{head / base:.2f}x**")
    for variant in args.peer:
        for label in ("base", "head"):
            peer = medians.get((label, f"peer {variant}"))
            if peer is not None:
                ours = medians[(label, "ours")]
                print(
                    f"- peer {variant} ÷ ours in the {label} children (wall - hash): "
                    f"{peer / ours:.2f}x"
                )
    print(f"- load average (1/5/15 min) before → after each child: {'; '.join(loads)}")
    for r in results:
        if r["kind"] == "profile":
            print(f"\n#### cProfile, {r['checkout']} ({r['wall']:.2f} s under the profiler)\n")
            print("```")
            print(r["text"].strip())
            print("```")


if __name__ == "__main__":
    main()
