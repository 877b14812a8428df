"""Faust LiveCheck baseline of livecheck-bench: the same workloads, through faust-streaming.

What it shows: Faust's LiveCheck on the broker livecheck-bench uses, measured the way
livecheck-bench measures livecheck (see docs/benchmarks.md):

- signal latency: from a service's ``Signal.send`` call to the return of the case's ``wait``,
  one signal at a time (the case waits for three signals in turn; the service sends each as soon
  as the case waits for it);
- throughput: tests per second completed, each test waiting for three signals, tests triggered
  by ``maybe_trigger`` at probability 1.0 and the signals sent by a Faust agent in the test's
  scope, ``test_concurrency`` at its default (100);
- false timeouts: a TIMEOUT raised before its wait's timeout elapsed (Faust's ``wait`` subtracts
  the total elapsed time again on every wake-up, and every signal wakes every waiter).

Settings: Faust's defaults, except the consumer's ``fetch_max_wait_ms`` (Faust hard-codes 1500;
tansu holds every fetch that long, so each hop would cost seconds), lowered to the 5 ms livecheck
uses, the producer's linger set to 0 as livecheck's, the web server off, and the topics
pre-created (tansu does not create topics on demand).

Run it through ``bench/faust/run.sh`` (which makes the venv), normally from livecheck-bench:

    bench/faust/run.sh --brokers 127.0.0.1:9092 --tests 3000 --samples 300

It prints progress to stderr and, last, one line ``FAUST_RESULT {json}`` to stdout.
"""

import argparse
import asyncio
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import uuid

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--brokers", required=True, help="bootstrap servers, host:port")
parser.add_argument("--tests", type=int, default=3000, help="tests of the throughput run")
parser.add_argument("--samples", type=int, default=300, help="signals of the latency run")
parser.add_argument("--warmup", type=int, default=30, help="unrecorded latency signals first")
parser.add_argument("--fetch-wait-ms", type=int, default=5, help="consumer fetch_max_wait_ms")
parser.add_argument("--partitions", type=int, default=8, help="partitions of the topics")
parser.add_argument(
    "--deadline", type=float, default=300.0, help="seconds the throughput run may take"
)
args = parser.parse_args()

# Faust builds its consumer with fetch_max_wait_ms=1500, not configurable: lower it here, before
# Faust imports aiokafka's consumer (the same knob as livecheck's fetch.wait.max.ms).
import aiokafka  # noqa: E402

_consumer_init = aiokafka.AIOKafkaConsumer.__init__


def _consumer_init_with_fetch_wait(self, *a, **kw):
    kw["fetch_max_wait_ms"] = args.fetch_wait_ms
    _consumer_init(self, *a, **kw)


aiokafka.AIOKafkaConsumer.__init__ = _consumer_init_with_fetch_wait

import faust  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from faust.livecheck import LiveCheck  # noqa: E402
from faust.livecheck.exceptions import LiveCheckTestTimeout  # noqa: E402

WAIT_TIMEOUT = 30.0
RUN = uuid.uuid4().hex[:8]
APP_ID = f"bench-faust-{RUN}"
TOPICS = {
    "tests": f"{APP_ID}-tests",
    "bus": f"{APP_ID}-bus",
    "reports": f"{APP_ID}-report",
}


def log(message):
    print(f"faust: {message}", file=sys.stderr, flush=True)


app = LiveCheck(
    APP_ID,
    broker=f"kafka://{args.brokers}",
    test_topic_name=TOPICS["tests"],
    bus_topic_name=TOPICS["bus"],
    report_topic_name=TOPICS["reports"],
    topic_partitions=args.partitions,
    producer_linger=0.0,
    web_enabled=False,
    datadir=tempfile.mkdtemp(prefix="bench-faust-"),
)

probes = asyncio.Queue()
false_timeouts = 0
outcomes = {"pass": 0, "timeout": 0, "fail": 0, "error": 0}
last_report = [None]


async def counted_wait(signal, timeout):
    """Waits for ``signal``, counting a TIMEOUT raised before ``timeout`` elapsed."""
    global false_timeouts
    started = time.monotonic()
    try:
        return await signal.wait(timeout=timeout)
    except LiveCheckTestTimeout:
        if time.monotonic() - started < timeout:
            false_timeouts += 1
        raise


@app.case(name="bench.latency", probability=1.0, warn_stalled_after=3600.0, test_expires=3600.0)
class latency_probe(app.Case):
    """Waits for three signals in turn; reports each one's latency from its send."""

    lat_1: app.Signal[float]
    lat_2: app.Signal[float]
    lat_3: app.Signal[float]

    async def run(self) -> None:
        test = self.current_test.id
        for index, signal in enumerate((self.lat_1, self.lat_2, self.lat_3)):
            probes.put_nowait(("waiting", test, index, None))
            sent = await signal.wait(timeout=WAIT_TIMEOUT)
            probes.put_nowait(("received", test, index, time.monotonic() - sent))


class Counted(app.Case):
    """Counts outcomes as they are reported."""

    def _count(self, state):
        outcomes[state] += 1
        last_report[0] = time.monotonic()

    async def on_test_pass(self, runner):
        await super().on_test_pass(runner)
        self._count("pass")

    async def on_test_timeout(self, runner, exc):
        await super().on_test_timeout(runner, exc)
        self._count("timeout")

    async def on_test_failed(self, runner, exc):
        await super().on_test_failed(runner, exc)
        self._count("fail")

    async def on_test_error(self, runner, exc):
        await super().on_test_error(runner, exc)
        self._count("error")


@app.case(
    name="bench.throughput",
    probability=1.0,
    warn_stalled_after=3600.0,
    test_expires=3600.0,
    base=Counted,
)
class three_signals(Counted):
    """The throughput workload: three signals, each carrying the test's number."""

    step_1: app.Signal[int]
    step_2: app.Signal[int]
    step_3: app.Signal[int]

    async def run(self, n: int) -> None:
        for signal in (self.step_1, self.step_2, self.step_3):
            seen = await counted_wait(signal, WAIT_TIMEOUT)
            assert seen == n, f"{signal.name} carried {seen}, want {n}"


requests = app.channel()


@app.agent(requests)
async def service(stream):
    """The service: triggers a test for each request and sends its signals in its scope."""
    async for n in stream:
        async with three_signals.maybe_trigger(f"throughput-{RUN}-{n}", n) as test:
            if test is not None:
                await three_signals.step_1.send(n)
                await three_signals.step_2.send(n)
                await three_signals.step_3.send(n)


async def next_probe():
    return await asyncio.wait_for(probes.get(), timeout=WAIT_TIMEOUT)


def percentile(sorted_values, p):
    """Nearest-rank percentile, as livecheck-bench computes it."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(p / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


async def measure_latency():
    signals = (latency_probe.lat_1, latency_probe.lat_2, latency_probe.lat_3)
    recorded = []
    seen = 0
    n = 0
    while len(recorded) < args.samples:
        n += 1
        test_id = f"latency-{RUN}-{n}"
        async with latency_probe.maybe_trigger(test_id):
            for index, signal in enumerate(signals):
                kind, test, i, _ = await next_probe()
                if (kind, test, i) != ("waiting", test_id, index):
                    raise RuntimeError(f"unexpected probe {kind} {test} {i}")
                await signal.send(time.monotonic())
                kind, test, i, latency = await next_probe()
                if (kind, test, i) != ("received", test_id, index):
                    raise RuntimeError(f"unexpected probe {kind} {test} {i}")
                seen += 1
                if seen > args.warmup and len(recorded) < args.samples:
                    recorded.append(latency * 1e3)
    recorded.sort()
    return {
        "samples": len(recorded),
        "p50_ms": percentile(recorded, 50),
        "p90_ms": percentile(recorded, 90),
        "p99_ms": percentile(recorded, 99),
        "mean_ms": statistics.fmean(recorded) if recorded else 0.0,
    }


async def measure_throughput():
    # livecheck-bench reads the CPU time of this process and of the broker at these marks.
    print("FAUST_MARK throughput-start", flush=True)
    started = time.monotonic()
    for n in range(args.tests):
        await requests.send(value=n)
    queued = time.monotonic() - started
    deadline = started + args.deadline
    while sum(outcomes.values()) < args.tests and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    print("FAUST_MARK throughput-end", flush=True)
    finished = last_report[0] or time.monotonic()
    reported = sum(outcomes.values())
    elapsed = finished - started
    return {
        "tests": args.tests,
        "reported": reported,
        "elapsed_s": elapsed,
        "requests_queued_s": queued,
        "tests_per_sec": reported / elapsed if elapsed > 0 else 0.0,
        "passed": outcomes["pass"],
        "timeouts": outcomes["timeout"],
        "false_timeouts": false_timeouts,
        "others": outcomes["fail"] + outcomes["error"],
    }


async def wait_assigned():
    wanted = 2 * args.partitions
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assigned = {
            tp for tp in app.consumer.assignment() if tp.topic in (TOPICS["tests"], TOPICS["bus"])
        }
        if len(assigned) >= wanted:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("Faust's consumer got no partitions within 120 s")


@app.task
async def bench():
    result = {"faust_streaming": faust.__version__, "aiokafka": aiokafka.__version__}
    try:
        await wait_assigned()
        await asyncio.sleep(1.0)
        log("partitions assigned; latency run")
        result["latency"] = await measure_latency()
        log(f"latency: {result['latency']}")
        log(f"throughput run: {args.tests} tests")
        result["throughput"] = await measure_throughput()
        log(f"throughput: {result['throughput']}")
    except Exception as exc:  # reported, not raised: Faust would only log it
        result["error"] = f"{type(exc).__name__}: {exc}"
    print("FAUST_RESULT " + json.dumps(result), flush=True)
    sys.stderr.flush()
    # Faust's graceful stop takes seconds and is not what is measured.
    os._exit(0)


async def create_topics():
    admin = AIOKafkaAdminClient(bootstrap_servers=args.brokers)
    await admin.start()
    try:
        topics = [NewTopic(name, args.partitions, 1) for name in TOPICS.values()]
        # Faust's leader-election topic, which it would create itself on a broker that allows it.
        topics.append(NewTopic(f"{APP_ID}-__assignor-__leader", 1, 1))
        await admin.create_topics(topics)
    finally:
        await admin.close()


def main():
    asyncio.run(create_topics())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
