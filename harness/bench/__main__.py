"""python -m harness.bench run | finalize | readme  (see ``--help``).

Every subcommand accepts the same options (irrelevant ones are ignored), because
``nox -s bench -- <args>`` passes the same arguments to ``run`` and ``finalize``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.bench.sweep import DEFAULT_ONEHOT_BUDGET, PROFILES, get_profile, parse_bytes
from harness.errors import HarnessError


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=None,
                        help="results folder (default: results/<machine-id> for the full profile, "
                             "results/<machine-id>/profile-<name> for the others)")
    common.add_argument("--profile", choices=sorted(PROFILES), default="full",
                        help="smoke (CI, untimed), quick (~3 min) or full (default)")
    common.add_argument("--part", default=None, help="run: label of this process's part (core, keras-jax, ...)")
    common.add_argument("--threads", type=int, default=None,
                        help="run: thread count for every framework (default: all cores in the affinity mask)")
    common.add_argument("--onehot-mem-budget", default="2GiB",
                        help="run: skip one-hot cases whose N x V matrices exceed this (default 2GiB)")
    common.add_argument("--run-id", default=os.environ.get("EMBEDDING_HARNESS_BENCH_RUN_ID"),
                        help="groups the parts of one run (nox passes one); run: a new id starts a new "
                             "run manifest, default a fresh id; finalize: must match the manifest")
    common.add_argument("--readme", type=Path, default=Path("README.md"), help="readme: file to update")
    common.add_argument("--pytest-arg", action="append", default=[], dest="pytest_args",
                        help="run: extra argument for the benchmark pytest process (repeatable)")
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common], help="benchmark one part in a child process")
    sub.add_parser("finalize", parents=[common], help="merge this run's parts into bench.csv, BENCH.md, plots")
    sub.add_parser("readme", parents=[common], help="regenerate the README section from the results")
    sub.add_parser("check", parents=[common], help="validate the selection and machine id (nothing runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            from harness.bench.run import check_specs
            from harness.machine import machine_id

            check_specs(dict(os.environ))
            machine_id()
            return 0
        if args.out is None:
            from harness.bench.finalize import bench_dir
            from harness.results import machine_dir

            args.out = bench_dir(machine_dir(), args.profile)
        if args.command == "run":
            from harness.bench import parts
            from harness.bench.run import run_part

            if not args.part:
                raise HarnessError("run needs --part LABEL (core, keras-tensorflow, keras-jax, keras-torch)")
            if args.threads is not None and args.threads < 1:
                raise HarnessError(f"--threads {args.threads}: must be at least 1")
            try:
                budget = parse_bytes(args.onehot_mem_budget)
            except ValueError as exc:
                raise HarnessError(f"--onehot-mem-budget: {exc}") from None
            return run_part(part=args.part, out=args.out, profile=get_profile(args.profile),
                            threads=args.threads, run_id=args.run_id or parts.new_run_id(),
                            onehot_budget=budget or DEFAULT_ONEHOT_BUDGET, pytest_args=args.pytest_args)
        if args.command == "finalize":
            from harness.bench.finalize import finalize

            finalize(args.out, args.run_id)
            return 0
        from harness.bench.readme import update_readme

        update_readme(args.out, args.readme)
        print(f"bench readme: updated {args.readme} from {args.out}", file=sys.stderr)
        return 0
    except HarnessError as exc:
        print(f"bench {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
