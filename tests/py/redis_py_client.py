# redis-py with its defaults (RESP3 first: HELLO 3, then CLIENT SETINFO) against the
# redis_server example, printing one line per check; the Rust test compares the lines.
# usage: python3 redis_py_client.py PORT
import sys
import time

import redis

r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=10)
print("ping", r.ping())
print("set", r.set("greeting", "hello"), r.get("greeting"))
print("incrby", r.incrby("n", 40), r.incr("n"), r.incrby("n", 1))
print("decr", r.decr("n"), r.decrby("n", 2))
print("mset", r.mset({"a": "1", "b": "2"}), r.mget("a", "b", "missing"))
print("expire", r.expire("a", 100), r.ttl("a"), r.ttl("b"), r.ttl("missing"))
print("persist", r.persist("a"), r.ttl("a"))
# A key that expires by itself: deleted without anyone reading it (DBSIZE reads no key).
print("pexpire", r.pexpire("b", 20), r.dbsize())
for _ in range(500):
    if r.dbsize() == 3:
        break
    time.sleep(0.01)
print("expired", r.dbsize(), r.exists("b"), r.get("b"))
print("set ex", r.set("t", "v", ex=50), r.ttl("t"))
# Pipelining without MULTI/EXEC, and redis-py's default pipeline: a transaction.
print("pipeline", r.pipeline(transaction=False).set("p", 1).incrby("p", 2).get("p").execute())
print("transaction", r.pipeline().set("p", 5).incrby("p", 2).get("p").mget("p", "n").execute())
with r.pipeline() as p:
    p.incr("tx").incr("tx")
    print("with", p.execute(), r.get("tx"))
# A command refused while queuing: redis-py raises, and nothing of the transaction ran.
try:
    r.pipeline().incr("tx").execute_command("NOSUCH").execute()
except redis.ResponseError as e:
    print("refused", str(e).split(":")[0], r.get("tx"))
print("delete", r.delete("greeting", "n", "missing"))
