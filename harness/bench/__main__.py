"""python -m harness.bench run | finalize | readme  (see ``--help``).

Every subcommand accepts the same options (irrelevant ones are ignored), because
``nox -s bench -- <args>`` passes the same arguments to ``run`` and ``finalize``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.bench import parts
from harness.bench.sweep import PROFILES, get_profile, parse_bytes
from harness.errors import HarnessError


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=None,
                        help="results folder (default: results/<machine-id> for the full profile, "
                             "results/<machine-id>/profile-<name> for the others)")
    common.add_argument("--profile", choices=sorted(PROFILES), default="full",
                        help="smoke (CI, untimed), tiny (CI, timed, seconds), quick (~3 min), full (default) "
                             "or gpu (CUDA adapters: ids per call 16K..4M, widths 64..1024)")
    common.add_argument("--part", default=None,
                        help="run: label of this process's part (a framework's name: torch, keras-jax, ...)")
    common.add_argument("--threads", type=int, default=None,
                        help="run: thread count for every framework (default: all cores in the affinity mask)")
    common.add_argument("--onehot-mem-budget", default=None,
                        help="run: skip one-hot cases whose N x V matrices exceed this (default: the "
                             "profile's, 2GiB; gpu 24GiB)")
    common.add_argument("--run-id", default=os.environ.get("EMBEDDING_HARNESS_BENCH_RUN_ID"),
                        help="groups the parts of one run (nox passes one); run: a new id starts a new "
                             "run manifest, default a fresh id; finalize: must match the manifest")
    common.add_argument("--readme", type=Path, default=Path("README.md"), help="readme: file to update")
    common.add_argument("--pytest-arg", action="append", default=[], dest="pytest_args",
                        help="run: extra argument for the benchmark pytest process (repeatable)")
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("all", parents=[common], help="every part (one process per framework and Keras backend, "
                                                 "EMBEDDING_HARNESS_ADAPTERS honoured), then finalize")
    sub.add_parser("run", parents=[common], help="benchmark one part in a child process")
    sub.add_parser("finalize", parents=[common], help="merge this run's parts into bench.csv, BENCH.md, plots")
    sub.add_parser("readme", parents=[common], help="regenerate the README section from the results")
    sub.add_parser("check", parents=[common], help="validate the selection and machine id (nothing runs)")
    return parser


def require_profile_devices(profile) -> None:
    """One line, before any part runs, when the profile's devices are missing here or the
    selection holds no adapter that runs on them."""
    from harness.bench.run import runs_on_profile_devices

    if not runs_on_profile_devices(profile, dict(os.environ)):
        raise HarnessError(f"profile {profile.name} measures adapters on {', '.join(profile.devices or ())}, "
                           f"and {parts.ADAPTERS_ENV}={os.environ.get(parts.ADAPTERS_ENV)!r} selects none that runs "
                           f"there")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            from harness.bench.run import check_specs
            from harness.machine import machine_id

            check_specs(dict(os.environ))
            require_profile_devices(get_profile(args.profile))
            machine_id()
            return 0
        if args.out is None:
            from harness.bench.finalize import bench_dir
            from harness.results import machine_dir

            args.out = bench_dir(machine_dir(), args.profile)
        if args.command in ("run", "all"):
            from harness.bench.run import run_part

            if args.command == "run" and not args.part:
                from harness.registry import registered

                raise HarnessError(f"run needs --part LABEL (a framework: {', '.join(registered().frameworks)}; "
                                   f"or plugins)")
            if args.threads is not None and args.threads < 1:
                raise HarnessError(f"--threads {args.threads}: must be at least 1")
            profile = get_profile(args.profile)
            try:
                budget = parse_bytes(args.onehot_mem_budget) if args.onehot_mem_budget else profile.onehot_budget
            except ValueError as exc:
                raise HarnessError(f"--onehot-mem-budget: {exc}") from None
            if args.command == "all":  # a profile this machine cannot run: one line, before any part
                require_profile_devices(profile)
            run_id = args.run_id or parts.new_run_id()
            plan = ([(args.part, {})] if args.command == "run"
                    else parts.plan(os.environ.get(parts.ADAPTERS_ENV)))
            failed = []
            for label, extra in plan:
                try:
                    code = run_part(part=label, out=args.out, profile=profile, threads=args.threads, run_id=run_id,
                                    onehot_budget=budget, pytest_args=args.pytest_args,
                                    base_env={**os.environ, **extra})
                except HarnessError as exc:
                    if args.command == "run":
                        raise
                    print(f"bench {label}: {exc}", file=sys.stderr)
                    rdir = parts.run_dir(args.out, run_id)  # so that BENCH.md lists it as failed
                    rdir.mkdir(parents=True, exist_ok=True)
                    parts.record_part(rdir, run_id, label, profile.name, "failed", str(exc))
                    code = 1
                if code:
                    failed.append(label)
            if args.command == "run":
                return 1 if failed else 0
            from harness.bench.finalize import finalize

            finalize(args.out, run_id)
            if failed:
                print(f"bench: parts failed: {', '.join(failed)} (listed in BENCH.md)", file=sys.stderr)
            return 1 if failed else 0
        if args.command == "finalize":
            from harness.bench.finalize import finalize

            finalize(args.out, args.run_id)
            return 0
        from harness.views.bench_readme import update_readme

        update_readme(args.out, args.readme)
        print(f"bench readme: updated {args.readme} from {args.out}", file=sys.stderr)
        return 0
    except HarnessError as exc:
        print(f"bench {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
