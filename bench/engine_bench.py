"""Micro-benchmark of the check engine's hot path on the demo playbook.

Run as `python bench/engine_bench.py [--json out.json] [--repeats 7] [--scale 1.0]`.

Reports microseconds per call (the minimum over several repeats, since a noisy machine only ever
adds time) of `evaluate` and of `parse_terms` + `evaluate` for three workloads:

- within:  every term inside its band (the common, fast case);
- typical: a deal with five exceptions, so approvers, steps and trades are all worked out;
- mixed:   1,000 distinct seeded random deals cycled, so no single input stays hot.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# Allow running from a checkout without installing the package.
_SRC = Path(__file__).resolve().parent.parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from governance.engine import (  # noqa: E402
    CompiledPlaybook,
    PlaybookDocument,
    compile_playbook,
    evaluate,
    semantic_problems,
)

WITHIN_TERMS: dict[str, object] = {
    "discount_pct": 10,
    "uncapped_liability": False,
    "liability_cap_multiple": 1,
    "payment_terms_days": 30,
    "contract_months": 24,
    "support_level": "standard",
    "price_increase_cap_pct": 6,
    "free_months": 0,
    "termination_for_convenience": False,
    "sla_uptime_pct": "99.5",
    "data_residency": "none",
    "billing_frequency": "semi_annual",
}
WITHIN_ATTRIBUTES: dict[str, object] = {"amount": Decimal(120000), "segment": "mid_market"}

TYPICAL_TERMS: dict[str, object] = {
    **WITHIN_TERMS,
    "discount_pct": 22,  # exception; multi-year and prepay trades would help
    "payment_terms_days": 60,  # exception; a two-year commitment would help
    "contract_months": 12,
    "free_months": 1,  # exception
    "support_level": "platinum",  # exception
    "billing_frequency": "quarterly",  # exception
}
TYPICAL_ATTRIBUTES: dict[str, object] = {
    "amount": Decimal(250000),
    "segment": "enterprise",
    "value_position": "parity",
}


def load_playbook() -> CompiledPlaybook:
    text = resources.files("governance").joinpath("demo/standard.yaml").read_text("utf-8")
    doc = PlaybookDocument.model_validate(yaml.safe_load(text))
    problems = semantic_problems(doc)
    if problems:
        raise SystemExit(f"demo playbook is invalid: {problems}")
    return compile_playbook(doc, 1)


def random_deals(
    compiled: CompiledPlaybook, count: int, seed: int
) -> list[tuple[dict[str, object], dict[str, object]]]:
    """Distinct seeded random raw deals: numbers around each band, every option, some missing."""
    rng = random.Random(seed)
    doc = compiled.document
    deals: list[tuple[dict[str, object], dict[str, object]]] = []
    seen: set[str] = set()
    while len(deals) < count:
        raw: dict[str, object] = {}
        for term in doc.terms:
            if rng.random() < 0.05:
                continue  # a term the deal does not state
            if term.kind == "number":
                walk = term.effective_walk_away()
                low = min(term.band.low, walk)
                high = max(term.band.high, walk)
                span = (high - low) or Decimal(1)
                # Mostly inside the band, sometimes out to a little past walk-away.
                if rng.random() < 0.6:
                    value = (
                        term.band.low
                        + (term.band.high - term.band.low) * Decimal(rng.randint(0, 100)) / 100
                    )
                else:
                    value = low - span / 10 + span * Decimal(rng.randint(0, 120)) / 100
                value = value.quantize(Decimal("0.01"))
                # JSON-like raw values: integers as int, the rest as text.
                raw[term.key] = int(value) if value == value.to_integral_value() else str(value)
            elif term.kind == "choice":
                raw[term.key] = rng.choice(term.options)
            else:
                raw[term.key] = rng.random() < 0.2
        attributes: dict[str, object] = {
            "amount": Decimal(rng.choice([50_000, 250_000, 750_000, 1_500_000])),
            "segment": rng.choice(["smb", "mid_market", "enterprise"]),
        }
        if rng.random() < 0.7:
            attributes["value_position"] = rng.choice(["strong", "parity", "weak"])
        fingerprint = repr((sorted(raw.items()), sorted(attributes.items())))
        if fingerprint not in seen:  # distinct deals, so no input is repeated within a cycle
            seen.add(fingerprint)
            deals.append((raw, attributes))
    return deals


def time_per_call(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Minimum over `repeats` of the mean µs per call of `fn` run `calls` times."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls / 1000)
    return best


def cycle(items: list[Any]) -> Callable[[], Any]:
    """A zero-argument callable returning the next item each call, wrapping around."""
    state = [0]
    size = len(items)

    def next_item() -> Any:
        i = state[0]
        state[0] = i + 1 if i + 1 < size else 0
        return items[i]

    return next_item


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[-1]})
    return f"pinned to cpu {allowed[-1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the calls per repeat (default 1.0)"
    )
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()

    compiled = load_playbook()
    mixed = random_deals(compiled, 1000, seed=20240601)
    workloads: list[tuple[str, list[tuple[Mapping[str, object], Mapping[str, object]]]]] = [
        ("within", [(WITHIN_TERMS, WITHIN_ATTRIBUTES)]),
        ("typical", [(TYPICAL_TERMS, TYPICAL_ATTRIBUTES)]),
        ("mixed_1000", list(mixed)),
    ]
    calls = max(1, int(5_000 * args.scale))

    rows: list[dict[str, object]] = []
    gc.collect()
    gc.disable()  # collections are a property of the whole service, not of this function
    try:
        for name, deals in workloads:
            parsed = [(compiled.parse_terms(t), a) for t, a in deals]
            next_parsed = cycle(parsed)
            next_raw = cycle(list(deals))

            def run_evaluate(nxt: Callable[[], Any] = next_parsed) -> object:
                terms, attributes = nxt()
                return evaluate(compiled, terms, attributes)

            def run_parse_evaluate(nxt: Callable[[], Any] = next_raw) -> object:
                raw, attributes = nxt()
                return evaluate(compiled, compiled.parse_terms(raw), attributes)

            time_per_call(run_evaluate, calls // 5, 1)  # warm up
            sample = evaluate(compiled, *parsed[0])
            rows.append(
                {
                    "workload": name,
                    "deals": len(deals),
                    "evaluate_us": round(time_per_call(run_evaluate, calls, args.repeats), 2),
                    "parse_evaluate_us": round(
                        time_per_call(run_parse_evaluate, calls, args.repeats), 2
                    ),
                    "sample_verdict": str(sample.verdict),
                    "sample_trades": len(sample.trades),
                }
            )
    finally:
        gc.enable()

    print(f"engine bench: demo playbook, {len(compiled.terms)} terms, {len(compiled.rules)} rules")
    print(f"python {platform.python_version()}, {pinned}, min of {args.repeats} x {calls} calls")
    print()
    print(f"{'workload':<12} {'deals':>6} {'evaluate µs':>12} {'parse+eval µs':>14}  sample")
    for row in rows:
        print(
            f"{row['workload']:<12} {row['deals']:>6} {row['evaluate_us']:>12.2f} "
            f"{row['parse_evaluate_us']:>14.2f}  {row['sample_verdict']}, "
            f"{row['sample_trades']} trade(s)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "pinned": pinned,
                    "repeats": args.repeats,
                    "calls_per_repeat": calls,
                    "results": rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
