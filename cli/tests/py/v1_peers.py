"""RPC peers written against docs/wire.md section 1, independently of
plughost, behaving like the old Python tools (rpc_nameservice.py,
rpc_service.py, rpc_client.py) ported to Python 3 and pika 1.x.

Usage (URL, RPC exchange and name-service exchange first):

  v1_peers.py URL RPC NS deployment ROUTE
      an old name service and an old service for `fibo` on ROUTE; prints
      "ready" once both consume, then serves until killed.
  v1_peers.py URL RPC NS client METHOD ARG...
      an old client: a v1 find (every answer within 1.5 s of the first),
      then a v1 call to the first route; prints one JSON line
      {"routes": [...], "status": "Success"|"Failure", "text": "..."}.
  v1_peers.py URL RPC NS slow-v2-ns DELAY_S ROUTE HOST PLUGIN
      a v2 name service that answers every v2 find for any method with
      ROUTE after DELAY_S seconds (for deadline tests); ignores v1 finds.
"""

import json
import sys
import time
import uuid

import pika

CRLF = "\r\n"


def channel(url, rpc_ex, ns_ex):
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    # Declared exactly as the old tools declare them.
    ch.exchange_declare(rpc_ex, "topic", durable=False, auto_delete=False)
    ch.exchange_declare(ns_ex, "fanout", durable=False, auto_delete=False)
    return conn, ch


def fibo(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def deployment(url, rpc_ex, ns_ex, route):
    conn, ch = channel(url, rpc_ex, ns_ex)
    routes = {"fibo": route}

    ns_q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(ns_q, ns_ex, "")

    def on_find(ch, method, props, body):
        parts = body.decode("utf-8", "replace").split(CRLF)
        if len(parts) != 6:
            print("name service: ignored a find of %d parts" % len(parts), file=sys.stderr)
            return
        name, _, exchange, _, key, _ = parts
        if name not in routes:
            return
        reply = name + CRLF + CRLF + routes[name] + CRLF
        ch.basic_publish(exchange, key, reply.encode(),
                         pika.BasicProperties(correlation_id=props.correlation_id))

    svc_q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(svc_q, rpc_ex, route)

    def on_call(ch, method, props, body):
        parts = body.decode("utf-8", "replace").split(CRLF)
        name = parts[0]
        rest = [p for p in parts[1:] if p]
        exchange, args = rest[0], rest[1:]
        try:
            if name != "fibo":
                raise ValueError("unknown method " + name)
            status, text = "Success", str(fibo(int(args[0])))
        except Exception as e:  # the old service answered Failure with str(e)
            status, text = "Failure", str(e)
        reply = status + CRLF + CRLF + text + CRLF
        ch.basic_publish(exchange, route + ".result", reply.encode(),
                         pika.BasicProperties(correlation_id=props.correlation_id))

    ch.basic_consume(ns_q, on_find, auto_ack=True)
    ch.basic_consume(svc_q, on_call, auto_ack=True)
    print("ready", flush=True)
    ch.start_consuming()


def client(url, rpc_ex, ns_ex, method, args):
    conn, ch = channel(url, rpc_ex, ns_ex)
    q = ch.queue_declare("", exclusive=True).method.queue

    key = q + ".RpcNameServiceClient"
    ch.queue_bind(q, rpc_ex, key)
    find_id = str(uuid.uuid4())
    body = method + CRLF + CRLF + rpc_ex + CRLF + CRLF + key + CRLF
    ch.basic_publish(ns_ex, "", body.encode(), pika.BasicProperties(correlation_id=find_id))
    routes = []
    give_up = time.time() + 15
    for m, props, reply in ch.consume(q, auto_ack=True, inactivity_timeout=0.1):
        if m is not None and props.correlation_id == find_id:
            routes.append(reply.decode().split(CRLF)[2])
            if len(routes) == 1:
                give_up = time.time() + 1.5
        if time.time() > give_up:
            break
    ch.cancel()
    if not routes:
        print(json.dumps({"routes": [], "status": None, "text": None}))
        return

    route = routes[0]
    ch.queue_bind(q, rpc_ex, route + ".result")
    call_id = str(uuid.uuid4())
    body = method + CRLF + CRLF + rpc_ex + CRLF + CRLF + "".join(a + CRLF for a in args)
    ch.basic_publish(rpc_ex, route, body.encode(), pika.BasicProperties(correlation_id=call_id))
    status, text = None, None
    give_up = time.time() + 15
    for m, props, reply in ch.consume(q, auto_ack=True, inactivity_timeout=0.1):
        if m is not None and props.correlation_id == call_id:
            parts = reply.decode().split(CRLF)
            status, text = parts[0], parts[2]
            break
        if time.time() > give_up:
            break
    ch.cancel()
    conn.close()
    print(json.dumps({"routes": routes, "status": status, "text": text}))


def slow_v2_ns(url, rpc_ex, ns_ex, delay, route, host, plugin):
    conn, ch = channel(url, rpc_ex, ns_ex)
    ns_q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(ns_q, ns_ex, "")

    def on_find(ch, method, props, body):
        if props.content_type != "application/json" or not props.reply_to:
            return  # a v1 find: not ours
        find = json.loads(body)
        time.sleep(delay)
        reply = {"method": find["method"], "route": route, "host": host,
                 "plugin": plugin, "version": "0.1.0"}
        ch.basic_publish("", props.reply_to, json.dumps(reply).encode(),
                         pika.BasicProperties(content_type="application/json",
                                              correlation_id=props.correlation_id))

    ch.basic_consume(ns_q, on_find, auto_ack=True)
    print("ready", flush=True)
    ch.start_consuming()


def main():
    url, rpc_ex, ns_ex, mode = sys.argv[1:5]
    rest = sys.argv[5:]
    if mode == "deployment":
        deployment(url, rpc_ex, ns_ex, rest[0])
    elif mode == "client":
        client(url, rpc_ex, ns_ex, rest[0], rest[1:])
    elif mode == "slow-v2-ns":
        slow_v2_ns(url, rpc_ex, ns_ex, float(rest[0]), rest[1], rest[2], rest[3])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
