"""The RabbitMQ tutorial-6 RPC pattern in Python (pika), as a benchmark peer.

What a Python user reaches for first: a BlockingConnection, a server that
consumes one queue with prefetch 1 and computes a recursive Fibonacci number,
and a client with an exclusive callback queue that publishes one call,
then pumps the connection until the answer with its correlation id arrives.
One call in flight, as in the tutorial.

    python3 pika_rpc_peer.py server QUEUE URL         # prints "ready", serves until killed
    python3 pika_rpc_peer.py client QUEUE URL SECONDS N   # prints JSON figures

scripts/bench-rpc.sh runs both (pika from target/pika, installed with pip).
"""

import json
import sys
import time
import uuid

import pika


def fib(n):
    # The tutorial's recursive definition.
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def serve(queue, url):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue=queue, auto_delete=True)

    def on_request(ch, method, props, body):
        answer = fib(int(body))
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(answer),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue=queue, on_message_callback=on_request)
    print("ready", flush=True)
    channel.start_consuming()


class Caller:
    def __init__(self, url):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        declared = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = declared.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True
        )
        self.answer = None
        self.waiting_for = None

    def on_response(self, ch, method, props, body):
        if props.correlation_id == self.waiting_for:
            self.answer = body

    def call(self, queue, n):
        self.answer = None
        self.waiting_for = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key=queue,
            properties=pika.BasicProperties(
                reply_to=self.callback_queue, correlation_id=self.waiting_for
            ),
            body=str(n),
        )
        while self.answer is None:
            self.connection.process_data_events(time_limit=None)
        return int(self.answer)


def measure(queue, url, seconds, n):
    caller = Caller(url)
    expected = fib(n)
    latencies = []
    errors = 0
    started = time.perf_counter()
    stop = started + seconds
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        if caller.call(queue, n) != expected:
            errors += 1
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def quantile(q):
        return 1000.0 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    print(
        json.dumps(
            {
                "calls": len(latencies),
                "calls_per_sec": len(latencies) / elapsed,
                "p50_ms": quantile(0.50),
                "p99_ms": quantile(0.99),
                "max_ms": 1000.0 * latencies[-1],
                "errors": {"0": errors} if errors else {},
            }
        )
    )


if __name__ == "__main__":
    mode, queue, url = sys.argv[1:4]
    if mode == "server":
        serve(queue, url)
    else:
        measure(queue, url, float(sys.argv[4]), int(sys.argv[5]))
