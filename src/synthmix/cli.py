"""`synthmix <verb>`: the stage verbs dvc.yaml calls, and the tools users run by hand.

Each verb validates params.yaml first (nothing is written when it is invalid), then dispatches to
the module that does the work.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthmix import __version__


@dataclass(frozen=True)
class Option:
    """One command-line option of a verb: argparse's flags and keywords; its value reaches the verb's
    run() as the keyword argparse names it (dest)."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verb:
    """A `synthmix` verb: what `synthmix <name>` runs and how it is called.

    ``module`` holds ``run(params, ...)``: called with the iteration for an iterative verb, with the
    options' values otherwise. ``preflight`` names a function of the module, ``(params, iteration)
    -> exit code``, checked before the verb relaunches itself under `accelerate launch`
    (``distributed`` verbs only), so an exit status that matters survives the launcher."""

    name: str
    module: str
    help: str
    description: str
    iterative: bool = False
    options: tuple[Option, ...] = ()
    distributed: bool = False
    preflight: str | None = None


#: every verb, in the order `synthmix --help` lists them
VERBS: dict[str, Verb] = {verb.name: verb for verb in (
    Verb(
        "prepare", "synthmix.prepare",
        "write every task's external train/test data",
        "Write every task's train and test splits into data/external/: a built-in family's generated "
        "from the seed, the paper's benchmarks through `datasets` (prepare.source: hub), or a YAML "
        "task's dataset (task_paths); record each task's trivial baseline in metrics/external.json.",
    ),
    Verb(
        "pretrain", "synthmix.pretrain",
        "pretrain the ladder size's base model on the task worlds in prose",
        "Pretrain `model`'s base (a ladder size) on a corpus each built-in task family writes about its "
        "world (facts, arithmetic, passages, code; disjoint from every fine-tuning and test item) into "
        "models/base/<size>, with its byte-level BPE tokenizer; figures in metrics/pretrain/<size>.json. "
        "Reads model, tokenizer and pretrain only: one base serves every experiment of that size. A hub "
        "model comes pretrained: nothing to do.",
        options=(
            Option(("--size",), {"default": None, "help": "the ladder size to pretrain (default: params.yaml's "
                                 "top-level `model`, whatever the profile; dvc.yaml passes it)"}),
        ),
    ),
    Verb(
        "tokenizer", "synthmix.tokenizer",
        "save the base model's tokenizer into models/tokenizer",
        "Save the tokenizer every later stage loads: the pretrained base's (models/base/<size>, a ladder "
        "size) or the hub model's own (pad = EOS where it has none).",
    ),
    Verb(
        "generate", "synthmix.generate",
        "sample synthetic data from the previous iteration's model",
        "Sample synthetic training data for ITERATION from models/iter<ITERATION-1> at "
        "generate.temperature / generate.top_p (answers or instances mode) into "
        "data/synthetic/raw/iter<ITERATION>/, with the generating model and sampling params recorded.",
        iterative=True, distributed=True, preflight="preflight",
    ),
    Verb(
        "validate", "synthmix.validation",
        "check a generated set with great-expectations",
        "Run each task's great-expectations suite on data/synthetic/raw/iter<ITERATION>/, write the "
        "report to metrics/validation/, and apply validate.on_invalid (keep, drop or fail).",
        iterative=True,
    ),
    Verb(
        "mix", "synthmix.mixing",
        "build an iteration's training set at synthetic proportion `ratio`",
        "Mix external and synthetic data for ITERATION (0: external only) in mix.mode (replace, drop or "
        "accumulate) into data/mixed/iter<ITERATION>/; exact counts go to metrics/mix/.",
        iterative=True,
    ),
    Verb(
        "train", "synthmix.train",
        "fine-tune one model per task with accelerate",
        "Fine-tune every task's model of ITERATION on data/mixed/iter<ITERATION>/ (iteration 0 from "
        "the base model, later ones per train.init), saving safetensors checkpoints to "
        "models/iter<ITERATION>/ and loss curves (dvclive) to metrics/train/.",
        iterative=True, distributed=True,
    ),
    Verb(
        "evaluate", "synthmix.evaluation",
        "score, calibration (ECE) and diversity of an iteration's models",
        "Evaluate every task's model of ITERATION on the external test split: task score, ECE (each "
        "of evaluate.ece_bins) with reliability data, Self-BLEU and Distinct-1/2 of sampled "
        "generations; predictions go to data/predictions/, metrics to metrics/iter<ITERATION>.json.",
        iterative=True, distributed=True,
    ),
    Verb(
        "gate", "synthmix.gate",
        "the paper's ECE early-warning check after an iteration",
        "Compare ITERATION's ECE and score with iteration 0's; flag a rise of ECE beyond "
        "gate.ece_relative_rise, or 'silent drift'. In gate.mode=halt a flag stops the pipeline (exit "
        "3) before the next iteration, with what to change.",
        iterative=True,
    ),
    Verb(
        "summary", "synthmix.summary",
        "score and ECE of every iteration against iteration 0",
        "Collect metrics/iterations/*.json into metrics/summary.json (deltas against iteration 0, "
        "gate flags) and metrics/curves/ (the per-task curves `dvc plots show` draws).",
    ),
    Verb(
        "report", "synthmix.report",
        "the paper's four findings checked on every experiment (HTML, Markdown, JSON)",
        "Read every finished experiment of the repository (dvc exp show --json, all commits), compare "
        "each ratio with ratio 0 at the same iteration, model size and setting, and write report.html "
        "(self-contained, with figures), report.md (figures beside it) and report.json (every "
        "number): degradation curves, safe thresholds with bootstrap intervals, the fit against "
        "log(parameters), the four findings with verdicts, the gate's warnings and ECE's lead, task "
        "sensitivity, and replace vs accumulate. Defaults come from params.yaml `report`.",
        options=(
            Option(("--out",), {"default": "reports/study", "help": "output directory, relative to --repo (default: %(default)s)"}),
            Option(("--repo",), {"default": ".", "help": "the DVC repository to read (default: the current one)"}),
            Option(("--rev",), {"action": "append", "metavar": "REV", "help": "only experiments based on this commit (repeatable; default: every commit)"}),
            Option(("--head-only",), {"action": "store_true", "help": "only experiments based on HEAD"}),
            Option(("--tolerance",), {"type": float, "help": "relative score tolerance for 'safe' (default: report.tolerance)"}),
            Option(("--at-ratio",), {"type": float, "help": "ratio for task sensitivity (default: report.sensitivity_ratio)"}),
            Option(("--bootstrap",), {"type": int, "help": "bootstrap resamples (default: report.bootstrap_samples)"}),
            Option(("--archive",), {"dest": "archive_dir", "metavar": "DIR",
                                    "help": "also write every experiment reported on into DIR (relative to --repo), one "
                                            "<name>.json.gz record each, with its per-item scores: commit them to keep "
                                            "the results after the experiments leave the DVC cache"}),
            Option(("--from-archive",), {"action": "append", "metavar": "DIR",
                                         "help": "add the records in DIR (written by --archive) to the experiments DVC "
                                                 "holds; the newest of a run held twice is kept (repeatable)"}),
        ),
    ),
    Verb(
        "queue", "synthmix.sweep",
        "where a `dvc exp run --queue` sweep stands; each failed run's log path",
        "List DVC's experiment queue (queued, running, succeeded, failed). For every failed "
        "experiment, print the path of the log DVC kept and its last lines; flag any log with a DVC "
        "lock error. Exit 1 when an experiment failed or a lock error was seen.",
        options=(
            Option(("--repo",), {"default": ".", "help": "the DVC repository whose queue to read (default: the current one)"}),
        ),
    ),
    Verb(
        "sweep", "synthmix.cluster",
        "run a grid of experiments: DVC's queue here, or one Slurm job per cell",
        "Expand -S key=v1,v2 options into a grid of experiments and run it. --on local (the default) "
        "queues them with `dvc exp run --queue` and starts DVC's queue. --on slurm submits one sbatch job "
        "per cell: each clones the git remote at HEAD into its own temporary directory, fetches the DVC "
        "remote's run-cache, runs `dvc exp run` with its cell's params and pushes the experiment and "
        "the run-cache back (`dvc exp pull` brings the results). Cells sharing their upstream stages "
        "(all params but ratio) wait for the first of them, so shared stages run once. Logs and state "
        "go to .synthmix/sweeps/<name>/; --status shows each cell (pending, running, done, failed) and "
        "--retry-failed resubmits the failed ones. Job resources come from params.yaml `sweep` or "
        "the flags.",
        options=(
            Option(("-S", "--set-param"), {"action": "append", "metavar": "KEY=V1,V2",
                                           "help": "a swept key and its values, as for dvc exp run (repeatable)"}),
            Option(("--on",), {"choices": ["local", "slurm"], "default": "local",
                               "help": "where the cells run (default: %(default)s)"}),
            Option(("--name",), {"help": "the sweep's name, used in experiment names (default: sweep<date>-<time>)"}),
            Option(("--status",), {"action": "store_true", "help": "show each cell of sweep --name (Slurm)"}),
            Option(("--retry-failed",), {"action": "store_true",
                                         "help": "resubmit the failed, cancelled, timed-out or lost cells of --name"}),
            Option(("--git-remote",), {"default": "origin", "help": "git remote the jobs clone and push to (default: %(default)s)"}),
            Option(("--remote",), {"help": "DVC remote (default: the committed default remote)"}),
            Option(("--partition",), {"help": "Slurm partition (default: params.yaml sweep.partition)"}),
            Option(("--cpus-per-task",), {"type": int, "help": "CPUs per job (default: sweep.cpus_per_task)"}),
            Option(("--gpus",), {"type": int, "help": "GPUs per job (default: sweep.gpus)"}),
            Option(("--time",), {"dest": "time_limit", "help": "Slurm time limit per job, e.g. 04:00:00 (default: sweep.time)"}),
            Option(("--mem",), {"help": "memory per job, e.g. 32G (default: sweep.mem)"}),
            Option(("--jobs",), {"type": int, "default": 2, "help": "--on local: experiments at a time (default: %(default)s)"}),
            Option(("--queue-only",), {"action": "store_true", "help": "--on local: queue the grid, do not start the queue"}),
            Option(("--dry-run",), {"action": "store_true", "help": "print each cell's sbatch script, submit nothing"}),
        ),
    ),
    Verb(
        "remote", "synthmix.remote",
        "check that a DVC remote and a git remote are ready for sharing",
        "Check that a DVC remote is configured, its storage plugin installed, reachable and writable, "
        "and that git has the remote `dvc exp push` uses. Exit 1 and say what is missing otherwise.",
        options=(
            Option(("--remote",), {"default": None, "help": "DVC remote name (default: the default remote)"}),
            Option(("--git-remote",), {"default": "origin", "help": "git remote for `dvc exp push` (default: %(default)s)"}),
            Option(("--no-write",), {"dest": "write", "action": "store_false", "help": "skip the write probe"}),
        ),
    ),
)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmix",
        description="How much self-generated training data can a language model take? The stage verbs "
        "of the synthmix DVC pipeline (dvc.yaml calls them; `dvc exp run` runs them in order).",
        epilog="Typical use: dvc exp run -S ratio=0.2   (see README.md)",
    )
    parser.add_argument("--version", action="version", version=f"synthmix {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS.values():
        p = sub.add_parser(verb.name, help=verb.help, description=verb.description)
        p.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
        if verb.iterative:
            p.add_argument("--iteration", type=int, required=True, metavar="N", help="iteration number (0 = baseline)")
        for option in verb.options:
            p.add_argument(*option.flags, **option.kwargs)
    return parser


def _distributed():
    from synthmix import distributed  # imports torch: only for the verbs that need it

    return distributed


def _keep_lost_interrupts() -> None:
    """Ctrl-C (SIGINT) that lands while a finaliser runs (a `__del__`, a weakref callback, as the
    garbage collector calls them anywhere) raises KeyboardInterrupt inside it, and Python prints that
    as "Exception ignored" and drops it: the stage would run on. Deliver such an interrupt again,
    a moment later, so that it surfaces in the stage's own code and stops it as Ctrl-C should.
    (From the hook itself it would land in the hook and be dropped again.)"""
    import _thread
    import threading

    previous = sys.unraisablehook
    if getattr(previous, "keeps_lost_interrupts", False):  # once a process (main() may run again in it)
        return

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            again = threading.Timer(0.05, _thread.interrupt_main)
            again.daemon = True
            again.start()
            return
        previous(unraisable)

    hook.keeps_lost_interrupts = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from synthmix.params import ParamsError, load_params

    try:
        params = load_params(args.params)
    except ParamsError as err:
        print(f"synthmix {args.verb}: {err}", file=sys.stderr)
        return 2
    verb = VERBS[args.verb]
    iterative = verb.iterative
    if iterative and (args.iteration < 0 or args.iteration > len(params.iterations)):
        print(
            f"synthmix {args.verb}: --iteration {args.iteration} is outside 0..{len(params.iterations)} "
            f"(params.yaml lists {len(params.iterations)} iterations)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(verb.module)
    if verb.distributed and _distributed().wants_launch(params):
        # accelerate.num_processes > 1 (or an accelerate config file): run this same verb under
        # `accelerate launch`; each launched process comes back here, inside the launcher.
        # A check whose exit status matters (the gate's halt, 3) runs here first: the launcher
        # reports any failing process as 1.
        code = getattr(module, verb.preflight)(params, args.iteration) if verb.preflight else 0
        if code:
            return code
        verb_args = [args.verb, "--params", args.params]
        if iterative:
            verb_args += ["--iteration", str(args.iteration)]
        try:
            return _distributed().relaunch(params, verb_args)
        except FileNotFoundError as err:
            print(f"synthmix {args.verb}: {err}", file=sys.stderr)
            return 2
    if params.threads:
        import torch

        torch.set_num_threads(params.threads)
    run: Callable[..., object] = module.run
    _keep_lost_interrupts()
    started = time.perf_counter()
    try:
        if iterative:
            code = run(params, args.iteration)
        else:
            extra = {k: v for k, v in vars(args).items() if k not in ("verb", "params", "iteration")}
            code = run(params, **extra)
    except KeyboardInterrupt:
        print(f"synthmix {args.verb}: interrupted; finished outputs are kept, rerun to continue", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":  # once, not once per launched process
        print(f"synthmix {args.verb}: done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return code if isinstance(code, int) else 0


def entry() -> int:
    """The `synthmix` console script: a heavy verb (one that imports torch) runs in a child of the warm
    zygote (zygote.py) when it can, and here otherwise; every other verb, and `--help`, here."""
    argv = sys.argv[1:]
    verb = next((arg for arg in argv if not arg.startswith("-")), None)
    help_asked = any(arg in ("-h", "--help", "--version") for arg in argv)
    if not help_asked and argv and argv[0] == verb:
        from synthmix import zygote

        if verb in zygote.HEAVY and zygote.enabled() and "RANK" not in os.environ:
            name = zygote.key()  # before the verb, which may set variables of its own
            code = zygote.call(argv, name)
            if code is not None:
                return code
            with zygote.running_here(name):
                return main(argv)
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
