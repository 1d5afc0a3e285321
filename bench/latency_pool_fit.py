"""ExecuTorch's latency profile refitted, and scored on held-out networks timed in the same interleaved pool.

A fit and a held-out benchmark timed apart (minutes or sessions) disagree by the machine's drift: on
this VM the ExecuTorch timings of one session ran 17 % faster than the next, and two passes four
minutes apart differed by 15 % (median), so a score mixed the model's error with the machine's. Here
the fitting networks (``fit_profile``'s sample: ``--per-space-fit`` per search space, seed 0) and the
held-out networks (``bench/latency.py``'s sample, none of them fitted) are timed together in one pool,
reshuffled every round: both see the same machine. The fit uses only the fitting networks.

    python bench/latency_pool_fit.py --cache DIR --compile-only --shards 2 --shard K   # both cores, first
    taskset -c 1 python bench/latency_pool_fit.py --cache DIR --cpu 1                  # then alone

Writes the profile (``targets/profiles/android-executorch-xnnpack@<cpu>.json``), its raw timings, and
bench/results/latency-executorch-<cpu>.json + .png in bench/latency.py's format, with the profile it
replaced scored on the same timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from latency import RESULTS, TIMING, plot, print_scores, scores, summarize

from edgekd.hw.compiled import cached_compile
from edgekd.hw.environment import cpu_model, environment
from edgekd.hw.features import arch_key
from edgekd.hw.fit_whole import fit_whole_records, whole_record
from edgekd.hw.host import cpu_slug
from edgekd.hw.interleave import profile_many
from edgekd.hw.model import ProfileLatencyModel, profile_path
from edgekd.hw.sampling import sample_archs
from edgekd.targets import load_target

TARGET = "android-executorch-xnnpack"
SHAPES = ["1x28x28", "3x32x32", "3x64x64", "3x96x96", "3x224x224"]
log = logging.getLogger("bench.latency_pool_fit")


def jobs_of(args, replaced: Path) -> tuple[list, list]:
    """(fitting jobs, held-out jobs) as (arch, shape); held-out as bench/latency.py samples them."""
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    fit = [(a, shapes[i % len(shapes)]) for i, a in enumerate(sample_archs(args.per_space_fit, 0))]
    fitted = {key for key, _ in json.loads(replaced.read_text())["fitted_networks"]} | {arch_key(a) for a, _ in fit}
    held = sample_archs(args.per_space, args.seed, exclude=fitted)
    return fit, [(a, shapes[i % len(shapes)]) for i, a in enumerate(held)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, required=True, help="compiled .pte files, kept and reused")
    p.add_argument("--compile-only", action="store_true")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--cpu", type=int, help="pin the whole process to this CPU while timing")
    p.add_argument("--rounds", type=int, default=TIMING["rounds"])
    p.add_argument("--per-space-fit", type=int, default=60)
    p.add_argument("--per-space", type=int, default=50, help="held-out networks per search space")
    p.add_argument("--seed", type=int, default=1000, help="held-out sample seed (bench/latency.py's)")
    p.add_argument("--shapes", nargs="+", default=SHAPES)
    p.add_argument("--out", type=Path, default=RESULTS / f"latency-executorch-{cpu_slug(cpu_model())}.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    target = load_target(TARGET)
    replaced = profile_path(TARGET)
    fit, held = jobs_of(args, replaced)
    every = fit + held
    started = time.time()
    files = []
    for i, (arch, shape) in enumerate(every):
        if args.compile_only and i % args.shards != args.shard:
            continue
        t0 = time.time()
        files.append((cached_compile("pte", arch, shape, "int8", args.cache), shape))
        log.info("compiled %d/%d %s in %.0f s", i + 1, len(every), "x".join(map(str, shape)), time.time() - t0)
    if args.compile_only:
        return
    timing = {**TIMING, "rounds": args.rounds}
    load_start = list(os.getloadavg())
    timed = profile_many({str(i): f for i, f in enumerate(files)}, runtime="executorch", threads=1, cpu=args.cpu,
                         shuffle=True, **timing)
    results = [timed[str(i)] for i in range(len(every))]
    timings = args.out.with_name(args.out.stem + "-timings.json")  # kept first: scoring must not lose a timing run
    timings.write_text(json.dumps([{"arch": a, "input_shape": list(s), **r.to_json()}
                                   for (a, s), r in zip(every, results)]) + "\n")
    finish(args, target, fit, held, results, started, load_start, timing)


def finish(args, target, fit, held, results, started, load_start, timing) -> None:
    """Fit on the fitting networks' timings, score on the held-out ones, write everything."""
    replaced = profile_path(TARGET)
    records = [whole_record((a, s, "int8"), r, len(results)) for (a, s), r in zip(fit, results[:len(fit)])]
    raw = RESULTS / f"latency_profile_raw_executorch@{cpu_slug(cpu_model())}.json"
    raw.write_text(json.dumps({"target": TARGET, "records": records}) + "\n")
    old = ProfileLatencyModel.load(replaced, "int8")
    note = (f"fitted by bench/latency_pool_fit.py: {len(fit)} networks timed in one interleaved pool with "
            f"{len(held)} held-out networks ({args.rounds} rounds, order reshuffled each round), pinned to cpu "
            f"{args.cpu}; spread = each network's own, with the machine's drift divided out")
    new_path = fit_whole_records(target, records, ("int8",), out=profile_path(TARGET, for_writing=True),
                                 seconds=time.time() - started, provenance={"note": note})
    new = ProfileLatencyModel.load(new_path, "int8")
    summary = summarize("int8", held, results[len(fit):], new)
    summary["replaced_profile"] = {"profile": old.source.get("file"), "date": old.source.get("date"),
                                   **scores([old.predict_ms(a, s) for a, s in held], summary["networks"])}
    out = {"input_shapes": [[int(v) for v in s.split("x")] for s in args.shapes], "threads": 1, "batch": 1,
           "timing": timing, "design": "held-out networks timed in one interleaved pool with the fitting networks",
           "pinned_cpu": args.cpu, "held_out_networks": len(held), "fitting_networks": len(fit),
           "profiles": {"executorch-xnnpack-int8": new.source}, "environment": environment(),
           "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
           "seconds": round(time.time() - started, 1), "backends": {"executorch-xnnpack-int8": summary}}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    plot(out, args.out.with_suffix(".png"))
    print_scores(out)
    r = summary["replaced_profile"]["vs_measured"]
    print(f"the profile it replaced ({summary['replaced_profile']['date']}) on the same timings: ±10% "
          f"{r['within_10pct']:.0%}, RMSPE {r['rmspe_pct']:.1f}%, mean error {r['mean_error_pct']:+.1f}%")
    print(f"wrote {new_path}, {raw.name}, {args.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
