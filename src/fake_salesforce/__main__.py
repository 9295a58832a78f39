"""``python -m fake_salesforce``: serve a fake org until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

from fake_salesforce.org import FakeSalesforce
from fake_salesforce.sample import sample_opportunities


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake org (with ``--opportunities`` sample records) until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m fake_salesforce", description="A local fake Salesforce org."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-version", default="59.0")
    parser.add_argument("--opportunities", type=int, default=0, help="sample records to load")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--daily-limit", type=int, default=100_000)
    args = parser.parse_args(argv)
    fake = FakeSalesforce(
        args.api_version,
        host=args.host,
        port=args.port,
        batch_size=args.batch_size,
        daily_limit=args.daily_limit,
    )
    if args.opportunities:
        fake.add_opportunities(sample_opportunities(args.opportunities, seed=args.seed))
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    # Only now: whoever reads the URL may stop the org at once, and must find it ready to stop.
    print(f"FAKE_SALESFORCE_URL={fake.url}", flush=True)
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
