"""Drives an rrdserver with three real OpenTSDB clients from PyPI:
opentsdb-py (HTTP with gzip and ?details=true, and telnet), potsdb (telnet)
and pyopentsdb (trailing slashes, JSON without a content type, POST suggest,
query with every flag). Usage: pyclients.py PORT BASE_TIMESTAMP.
Exits non-zero with a message on the first wrong answer."""

import datetime
import sys
import time

import potsdb
from pyopentsdb import tsdb as pyopentsdb_tsdb
from opentsdb import TSDBClient, TSDBConnectProtocols

port = int(sys.argv[1])
base = int(sys.argv[2])
host = "127.0.0.1"


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")


# opentsdb-py over HTTP: liveness via /api/version, gzip puts with ?details=true.
# (Its own check_tsdb_alive=True trips over a bug in the client, so it is called after construction.)
http = TSDBClient(host, port, protocol=TSDBConnectProtocols.HTTP, host_tag=False)
check("opentsdb-py liveness", http._tsdb_connect.is_alive(raise_error=True), True)
for i in range(3):
    http.send("py.http", 10 + i, host="a", timestamp=base + 300 * i)
http.close()
http.wait()
check("opentsdb-py http statuses", (http.statuses["success"], http.statuses["failed"]), (3, 0))

# opentsdb-py over telnet.
tel = TSDBClient(host, port, protocol=TSDBConnectProtocols.TELNET, host_tag=False)
for i in range(3):
    tel.send("py.telnet", 20 + i, host="a", timestamp=base + 300 * i)
tel.close()
tel.wait()

# potsdb: telnet, never reads replies.
pot = potsdb.Client(host, port=port, host_tag=False)
for i in range(3):
    pot.log("py.potsdb", 30 + i, host="a", timestamp=base + 300 * i)
pot.wait()
pot.close()

# pyopentsdb: trailing slashes, no content type.
tsdb = pyopentsdb_tsdb.tsdb_connection(f"http://{host}:{port}")
check("pyopentsdb version", "version" in tsdb.version(), True)
tsdb.put([{"metric": "py.pyopentsdb", "timestamp": base + 300 * i, "value": 40 + i, "tags": {"host": "a"}} for i in range(3)])
check("pyopentsdb aggregators", "sum" in tsdb.aggregators(), True)
check("pyopentsdb filters", "literal_or" in tsdb.filters(), True)

# Telnet clients write in the background: wait (bounded) until the server has everything.
start = datetime.datetime.fromtimestamp(base, tz=datetime.timezone.utc)
end = datetime.datetime.fromtimestamp(base + 600, tz=datetime.timezone.utc)
deadline = time.time() + 30
want = {"py.http": 10, "py.telnet": 20, "py.potsdb": 30, "py.pyopentsdb": 40}
while True:
    names = tsdb.suggest(type="metrics", q="py.", max=10)
    if sorted(names) == sorted(want) or time.time() > deadline:
        break
    time.sleep(0.1)
check("suggest", sorted(names), sorted(want))

for metric, first in want.items():
    deadline = time.time() + 30
    while True:
        got = tsdb.query(start=start, end=end, metrics=[{"metric": metric, "aggregator": "sum", "tags": {"host": "a"}}])
        dps = got[0]["dps"] if got else {}
        if len(dps) == 3 or time.time() > deadline:
            break
        time.sleep(0.1)
    check(f"{metric} points", dps, {str(base + 300 * i): first + i for i in range(3)})
    check(f"{metric} tags", got[0]["tags"], {"host": "a"})
print("OK: opentsdb-py (http, telnet), potsdb, pyopentsdb")
