"""Runs one worker on ``crashapp.app`` (a stand-in for ``tock worker``, with the
rescuer's timings as options so a test can shorten them).

    python run_worker.py [--concurrency 10] [--heartbeat 2] [--rescue-after 10]
                         [--rescue-interval 2] [--lease-ttl 10] [--renew-interval 2]
"""

from __future__ import annotations

import argparse
import logging

from crashapp import app

from tock.duties import RescuerConfig
from tock.leader import ElectorConfig
from tock.worker.worker import Worker, WorkerConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=None)  # None: sized by the worker
    parser.add_argument("--heartbeat", type=float, default=2.0)
    parser.add_argument("--rescue-after", type=float, default=10.0)
    parser.add_argument("--rescue-interval", type=float, default=2.0)
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    parser.add_argument("--renew-interval", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-7s %(process)d %(threadName)s %(name)s: %(message)s",
    )
    config = WorkerConfig(
        queues=("default",),
        concurrency=args.concurrency,
        prefetch=args.prefetch,
        heartbeat_interval=args.heartbeat,
        rescuer=RescuerConfig(interval=args.rescue_interval, rescue_after=args.rescue_after),
        elector=ElectorConfig(ttl=args.lease_ttl, renew_interval=args.renew_interval),
    )
    Worker(app, config).run()
    app.close()


if __name__ == "__main__":
    main()
