"""Command line: `python -m composer.engine lorahub|lego|merge|evaluate ...`.

Progress goes to stderr, the result (as JSON, without the loss history) to stdout. Bad input
gives one line `error: ...` on stderr and exit status 2, never a traceback.
"""

import argparse
import json
import sys
import warnings

from composer.engine.adapters import one_line
from composer.engine.baselines import METHODS
from composer.engine.knots import DEFAULT_DISJOINT, DEFAULT_SCALING_COEF, DISJOINT
from composer.engine.lego import CENTROIDS, UNITS, LegoParams
from composer.engine.lorahub import GUARDS, LOSS_NORMS, MODES, PICKS, LoraHubParams, StepInfo


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m composer.engine", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)

    hub = sub.add_parser("lorahub", help="compose adapters for a few examples (LoraHub)")
    hub.add_argument("--base-model", required=True, metavar="DIR")
    hub.add_argument("--adapters", required=True, nargs="+", metavar="DIR")
    hub.add_argument("--examples", required=True, metavar="FILE", help="JSON lines, CSV or TSV")
    hub.add_argument("--out", required=True, metavar="DIR")
    d = LoraHubParams()
    hub.add_argument(
        "--mode",
        choices=MODES,
        default=d.mode,
        help="screen: every adapter alone, then search the K best from the best one "
        "(%(default)s); reference: the paper's search from w = 0",
    )
    hub.add_argument(
        "--steps",
        type=int,
        default=d.budget,
        help="evaluation budget, screening included (%(default)s)",
    )
    hub.add_argument("--top-k", type=int, default=d.top_k, help="screen: adapters searched over")
    hub.add_argument(
        "--screen-batch", type=int, default=d.screen_batch, help="screen: adapters per forward"
    )
    hub.add_argument(
        "--guard",
        choices=GUARDS,
        default=d.guard,
        help="screen: keep a mix over the best adapter only if it wins with any example "
        "left out (loo)",
    )
    hub.add_argument(
        "--prior",
        type=float,
        default=d.prior,
        help="screen: weight of mean|w - best adapter's one-hot| in the search (%(default)s)",
    )
    hub.add_argument("--seed", type=int, default=d.seed)
    hub.add_argument("--optimizer", default=d.optimizer, help="nevergrad optimizer (%(default)s)")
    hub.add_argument(
        "--population",
        type=int,
        default=d.population,
        help="candidates per batched forward (%(default)s = sequential)",
    )
    hub.add_argument("--l1", type=float, default=d.l1, help="weight of mean|w| (%(default)s)")
    hub.add_argument("--bound", type=float, default=d.bound, help="|w| limit (%(default)s)")
    hub.add_argument("--loss-norm", choices=LOSS_NORMS, default=d.loss_norm)
    hub.add_argument("--batch-size", type=int, default=None, help="examples per forward (all)")
    hub.add_argument("--pick", choices=PICKS, default=d.pick)
    hub.add_argument("--separator", default=d.separator, help="causal LMs: input/output glue")
    hub.add_argument("--heldout", metavar="FILE", help="examples to evaluate the result on")
    hub.add_argument("--device", default=None)
    hub.add_argument("--quiet", action="store_true", help="no progress lines")

    lego = sub.add_parser("lego", help="merge adapters by rank-wise clustering (LoRA-LEGO)")
    lego.add_argument("--adapters", required=True, nargs="+", metavar="DIR")
    lego.add_argument(
        "--rank",
        type=int,
        default=None,
        metavar="K",
        help="merged rank k (default: the largest input rank)",
    )
    lego.add_argument("--out", required=True, metavar="DIR")
    lego.add_argument("--weights", type=float, nargs="+", default=None)
    lego.add_argument("--no-param-reweight", action="store_true")
    lego.add_argument("--no-output-reweight", action="store_true")
    lego.add_argument(
        "--normalize",
        action="store_true",
        help="L2-normalise the a and b parts for the clustering distance",
    )
    lego.add_argument(
        "--units",
        choices=UNITS,
        default=LegoParams.units,
        help="an input's rank-1 units: its ΔW's singular directions (svd) or its stored A, B",
    )
    lego.add_argument(
        "--centroid",
        choices=CENTROIDS,
        default=LegoParams.centroid,
        help="a cluster's unit: the mean of its members, or the best rank-1 approximation "
        "of their sum (rank1)",
    )
    lego.add_argument("--max-iter", type=int, default=LegoParams.max_iter)
    lego.add_argument("--seed", type=int, default=0)
    lego.add_argument("--device", default=None)
    _check_arguments(lego)

    merge = sub.add_parser("merge", help="baseline merges (peft's, and exact task arithmetic)")
    merge.add_argument("--method", required=True, choices=METHODS)
    merge.add_argument("--adapters", required=True, nargs="+", metavar="DIR")
    merge.add_argument("--weights", type=float, nargs="+", default=None, help="default 1/N each")
    merge.add_argument("--density", type=float, default=None, help="ties/dare/prune/knots (0.5)")
    merge.add_argument("--rank", type=int, default=None, help="svd family, task_arithmetic, knots")
    merge.add_argument("--seed", type=int, default=0)
    merge.add_argument(
        "--scaling-coef",
        type=float,
        default=DEFAULT_SCALING_COEF,
        help=f"knots: λ, the merged update's multiplier ({DEFAULT_SCALING_COEF:g})",
    )
    merge.add_argument(
        "--disjoint",
        choices=DISJOINT,
        default=DEFAULT_DISJOINT,
        help="knots: the mean (TIES) or the sum of the values that agree in sign",
    )
    merge.add_argument("--out", required=True, metavar="DIR")
    merge.add_argument("--device", default=None)
    _check_arguments(merge)

    ev = sub.add_parser("evaluate", help="loss and exact match on examples")
    ev.add_argument("--base-model", required=True, metavar="DIR")
    ev.add_argument("--adapter", default=None, metavar="DIR")
    ev.add_argument("--examples", required=True, metavar="FILE")
    ev.add_argument("--separator", default="")
    ev.add_argument("--max-new-tokens", type=int, default=None)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--device", default=None)
    return p


def _check_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("exact match of the parents and of the merge (optional)")
    g.add_argument("--examples", nargs="+", metavar="FILE", help="one set, or one per adapter")
    g.add_argument("--base-model", metavar="DIR", help="needed with --examples")
    g.add_argument("--separator", default="", help="causal LMs: input/output glue")


def _merge_check(args: argparse.Namespace):
    from composer.engine.run import MergeCheck

    if not args.examples:
        return None
    if not args.base_model:
        raise ValueError("--examples needs --base-model to run the adapters")
    return MergeCheck(args.base_model, args.examples, args.device, separator=args.separator)


def _progress(info: StepInfo) -> None:
    print(
        f"step {info.step:>4}/{info.budget}  loss {info.loss:.5f}  best {info.best_loss:.5f}  "
        f"({info.seconds:.1f}s)",
        file=sys.stderr,
        flush=True,
    )


def run_command(args: argparse.Namespace) -> dict:
    from composer.engine import run

    if args.command == "lorahub":
        params = LoraHubParams(
            mode=args.mode,
            top_k=args.top_k,
            screen_batch=args.screen_batch,
            guard=args.guard,
            prior=args.prior,
            budget=args.steps,
            optimizer=args.optimizer,
            seed=args.seed,
            l1=args.l1,
            bound=args.bound,
            population=args.population,
            loss_norm=args.loss_norm,
            batch_size=args.batch_size,
            pick=args.pick,
            separator=args.separator,
        )
        return run.run_lorahub(
            args.base_model,
            args.adapters,
            args.examples,
            args.out,
            params,
            on_step=None if args.quiet else _progress,
            heldout=args.heldout,
            device=args.device,
        )
    if args.command == "lego":
        params = LegoParams(
            k=args.rank,
            param_reweight=not args.no_param_reweight,
            output_reweight=not args.no_output_reweight,
            normalize=args.normalize,
            units=args.units,
            centroid=args.centroid,
            weights=args.weights,
            max_iter=args.max_iter,
            seed=args.seed,
            device=args.device,
        )
        return run.run_lego(args.adapters, args.out, params, check=_merge_check(args))
    if args.command == "merge":
        return run.run_merge(
            args.method,
            args.adapters,
            args.out,
            weights=args.weights,
            density=args.density,
            rank=args.rank,
            seed=args.seed,
            scaling_coef=args.scaling_coef,
            disjoint=args.disjoint,
            check=_merge_check(args),
        )
    return run.run_evaluate(
        args.base_model,
        args.examples,
        args.adapter,
        device=args.device,
        separator=args.separator,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Libraries' warnings would bury our progress and one-line errors (`__main__` also turns
    # off their progress bars before they are imported).
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        result = run_command(args)
    except (ValueError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    result.pop("history", None)
    print(json.dumps(result, indent=2))
    return 0
