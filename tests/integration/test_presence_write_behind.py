"""The write-behind promise as the issue states it: 1,000 sockets heartbeating every second
for 30 s with a 10 s flush interval produce at most 4 DynamoDB writes per socket, and the last
seen in DynamoDB (read with boto3) equals the last heartbeat Redis recorded."""
import collections
import json
import subprocess

from conftest import BIN, wait_for
from test_presence import _final_states_match, counters


def test_1000_sockets_for_30s_with_10s_flushes_write_at_most_4_times_each(cluster_factory,
                                                                           redis_server,
                                                                           dynamo_proxy):
    env = dict(redis_server.env, **dynamo_proxy.env, PARLEY_PRESENCE_FLUSH_MS=10000,
               PARLEY_PRESENCE_GRACE_MS=60000)
    c = cluster_factory(**env)
    c.start_broker()
    before = c.replicas("presence")
    c.spawn("presence", "parley-presence")
    wait_for(lambda: c.replicas("presence") == before + 1, what="presence ready")
    c.redis, c.dynamo_proxy = redis_server, dynamo_proxy
    out = subprocess.run([f"{BIN}/presence-sim", "--sockets", "1000", "--duration-ms", "30000",
                          "--tenant", "wb"], env=c.env, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    report = json.loads(out.stdout)
    assert report["errors"] == {} and report["heartbeats_acked"] == report["heartbeats_sent"]
    assert report["heartbeats_sent"] >= 1000 * 29
    # the last flush after the last heartbeat: everything lands within one more interval
    wait_for(lambda: _final_states_match(c, "wb", 1000), timeout=25,
             what="every socket's last heartbeat in DynamoDB")
    writes = collections.Counter((pk, sk) for _, pk, sk in dynamo_proxy.written_keys()
                                 if pk.startswith("SOCKETS#wb#"))
    assert len(writes) == 1000
    assert max(writes.values()) <= 4, writes.most_common(3)
    assert counters(c)["flush_errors"] == 0
