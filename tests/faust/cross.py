"""The Faust side of livecheck's cross-language test (tests/faust/cross.sh runs it).

Subcommands:

- ``topics``: creates topics (tansu creates none on demand).
- ``service``: a Faust service (faust-streaming's LiveCheck API, as a service uses it) that
  triggers ``cross.faust_service`` tests with a record and a keyword argument and sends the
  case's record-typed signals in each test's scope. A livecheck worker runs those tests.
- ``worker``: a Faust LiveCheck worker running the case ``cross.livecheck_service``, whose tests
  and signals a livecheck service sends (tests/src/bin/livecheck-faust-cross.rs). The case
  asserts that its arguments and signal values arrive as records, not dicts.
- ``reports``: reads a report topic from the start, decodes every report with Faust's own
  ``TestReport`` model, and counts the outcomes of one case's tests; exits 0 once every expected
  test passed, 1 on a non-passing report or at the deadline.

The records (``cross.models.*``) mirror the Rust types of the livecheck side.
"""

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from typing import List

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
sub = parser.add_subparsers(dest="command", required=True)

topics_cmd = sub.add_parser("topics", help="create topics")
topics_cmd.add_argument("names", nargs="+")
topics_cmd.add_argument("--partitions", type=int, required=True)

for name in ("service", "worker"):
    cmd = sub.add_parser(name)
    cmd.add_argument("--prefix", required=True, help="topic prefix of this direction")
    cmd.add_argument("--partitions", type=int, required=True)
    cmd.add_argument("--fetch-wait-ms", type=int, default=5, help="consumer fetch_max_wait_ms")
sub.choices["service"].add_argument("--tests", type=int, required=True)
sub.choices["service"].add_argument("--run", required=True, help="test id prefix")

reports_cmd = sub.add_parser("reports")
reports_cmd.add_argument("--topic", required=True)
reports_cmd.add_argument("--case", required=True)
reports_cmd.add_argument("--run", required=True, help="test id prefix")
reports_cmd.add_argument("--expect", type=int, required=True)
reports_cmd.add_argument("--deadline", type=float, required=True, help="seconds")

for cmd in sub.choices.values():
    cmd.add_argument("--brokers", required=True)
args = parser.parse_args()

WAIT_TIMEOUT = 120.0


def log(message):
    print(f"faust-cross {args.command}: {message}", file=sys.stderr, flush=True)


if args.command in ("service", "worker"):
    # Faust builds its consumer with fetch_max_wait_ms=1500, not configurable; tansu holds every
    # fetch that long (docs/kafka.md). Lower it before Faust imports aiokafka's consumer.
    import aiokafka

    _consumer_init = aiokafka.AIOKafkaConsumer.__init__

    def _consumer_init_with_fetch_wait(self, *a, **kw):
        kw["fetch_max_wait_ms"] = args.fetch_wait_ms
        _consumer_init(self, *a, **kw)

    aiokafka.AIOKafkaConsumer.__init__ = _consumer_init_with_fetch_wait

import faust  # noqa: E402
from faust.livecheck import LiveCheck, Signal  # noqa: E402
from faust.livecheck.models import TestReport  # noqa: E402


class Line(faust.Record, namespace="cross.models.Line"):
    sku: str
    qty: int


class Order(faust.Record, namespace="cross.models.Order"):
    id: str
    side: str
    lines: List[Line]


class Execution(faust.Record, namespace="cross.models.Execution"):
    order_id: str
    n: int


def make_order(run: str, n: int) -> Order:
    """The order of test ``n``; livecheck-faust-cross builds the same one."""
    return Order(
        id=f"{run}-{n}",
        side="sell" if n % 2 else "buy",
        lines=[Line(sku=f"sku-{n}", qty=n), Line(sku="extra", qty=1)],
    )


def topic_names(prefix):
    return {
        "test_topic_name": f"{prefix}-tests",
        "bus_topic_name": f"{prefix}-bus",
        "report_topic_name": f"{prefix}-report",
    }


async def create_topics():
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=args.brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, args.partitions, 1) for name in args.names])
    finally:
        await admin.close()


def service():
    """Triggers tests as a Faust service does, and sends their signals in the test's scope."""
    app = faust.App(
        f"{args.prefix}-service",
        broker=f"kafka://{args.brokers}",
        producer_linger=0.0,
        web_enabled=False,
        datadir=tempfile.mkdtemp(prefix="faust-cross-service-"),
    )
    livecheck = app.LiveCheck(topic_partitions=args.partitions, **topic_names(args.prefix))

    @livecheck.case(name="cross.faust_service", probability=1.0)
    class faust_service(livecheck.Case):
        """Run by a livecheck worker: tests/src/bin/livecheck-faust-cross.rs."""

        order_placed: Signal[Order]
        order_executed: Signal[Execution]

    async def serve():
        for n in range(args.tests):
            order = make_order(args.run, n)
            # The order positionally, n by name: livecheck reads test_kwargs by parameter name.
            async with faust_service.maybe_trigger(order.id, order, n=n) as test:
                assert test is not None, "probability 1.0 always triggers"
                await faust_service.order_placed.send(order)
                await faust_service.order_executed.send(Execution(order_id=order.id, n=n))
        producer = livecheck.producer
        await producer.flush()
        await producer.stop()
        log(f"triggered {args.tests} tests and sent their signals")

    asyncio.run(serve())


def worker():
    """A Faust LiveCheck worker running the case a livecheck service triggers."""
    app_id = f"{args.prefix}-faust-worker"
    app = LiveCheck(
        app_id,
        broker=f"kafka://{args.brokers}",
        topic_partitions=args.partitions,
        producer_linger=0.0,
        web_enabled=False,
        datadir=tempfile.mkdtemp(prefix="faust-cross-worker-"),
        **topic_names(args.prefix),
    )

    @app.case(name="cross.livecheck_service", probability=1.0, warn_stalled_after=3600.0)
    class livecheck_service(app.Case):
        """Triggered and signalled by livecheck-faust-cross (json codec, record values)."""

        order_accepted: Signal[Order]
        order_shipped: Signal[Execution]

        async def run(self, order: Order, n: int) -> None:
            assert isinstance(order, Order), f"argument order is a {type(order).__name__}"
            assert all(isinstance(line, Line) for line in order.lines), order.lines
            accepted = await self.order_accepted.wait(timeout=WAIT_TIMEOUT)
            assert isinstance(accepted, Order), f"order_accepted is a {type(accepted).__name__}"
            assert accepted == order, f"{accepted!r} != {order!r}"
            shipped = await self.order_shipped.wait(timeout=WAIT_TIMEOUT)
            assert isinstance(shipped, Execution), f"order_shipped is a {type(shipped).__name__}"
            assert (shipped.order_id, shipped.n) == (order.id, n), repr(shipped)

    async def create_leader_topic():
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=args.brokers)
        await admin.start()
        try:
            # Faust's leader-election topic, which it would create itself where brokers allow.
            await admin.create_topics([NewTopic(f"{app_id}-__assignor-__leader", 1, 1)])
        finally:
            await admin.close()

    asyncio.run(create_leader_topic())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


async def read_reports():
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.brokers, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    passed, failed, states = set(), {}, {}
    expected = {f"{args.run}-{n}" for n in range(args.expect)}
    deadline = time.monotonic() + args.deadline
    try:
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(args.topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while passed != expected and not failed and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    # Faust's own model: a report it cannot read fails here.
                    report = TestReport.loads(message.value, serializer="json")
                    test = report.test
                    if report.case_name != args.case or test is None:
                        continue
                    test_id = test["id"] if isinstance(test, dict) else test.id
                    if test_id not in expected:
                        continue
                    state = getattr(report.state, "value", report.state)
                    state = "PASS" if state == "111/***/111" else state
                    states[state] = states.get(state, 0) + 1
                    if state == "PASS":
                        passed.add(test_id)
                    else:
                        failed[test_id] = (state, report.error, report.traceback)
    finally:
        await consumer.stop()
    counts = " ".join(f"{state}={count}" for state, count in sorted(states.items())) or "none"
    print(
        f"RESULT case={args.case} passed={len(passed)}/{args.expect} reports: {counts}",
        flush=True,
    )
    for test_id, (state, error, traceback) in sorted(failed.items())[:5]:
        print(f"  {test_id}: {state}: {error}\n{traceback or ''}", flush=True)
    return passed == expected and not failed


def main():
    if args.command == "topics":
        asyncio.run(create_topics())
    elif args.command == "service":
        service()
    elif args.command == "worker":
        worker()
    elif args.command == "reports":
        sys.exit(0 if asyncio.run(read_reports()) else 1)


if __name__ == "__main__":
    main()
