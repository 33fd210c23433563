"""The store test servers themselves: SigV4Proxy must pass what AWS accepts and refuse what AWS
refuses (otherwise a signing bug in Parley's DynamoDB client would go unnoticed), its faults must
reach the client, and Redis/dynalite must come back on the same port after an outage.

Clients here are independent of Parley: boto3, botocore's signer, the curl command line tool
(the same libcurl SigV4 code that common/dynamo.c uses) and raw sockets.
"""
import datetime
import http.client
import json
import shutil
import socket
import subprocess

import boto3
import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from stores import SigV4Proxy

TABLE = "things"
TIMESTAMP = "%Y%m%dT%H%M%SZ"


def dynamo_client(proxy, secret="secret", attempts=1, **config):
    """boto3 DynamoDB client through the proxy; by default it does not retry, so that every
    error the proxy returns reaches the test."""
    config.setdefault("connect_timeout", 2)
    config.setdefault("read_timeout", 5)
    return boto3.client("dynamodb", endpoint_url=proxy.url, region_name="eu-west-1",
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                                      **config))


def create_table(client):
    client.create_table(TableName=TABLE,
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        BillingMode="PAY_PER_REQUEST")


def signed_request(proxy, operation, payload, secret="secret", at=None, headers=()):
    """A DynamoDB request signed by botocore's SigV4Auth at time `at` (default now), not sent."""
    request = AWSRequest("POST", proxy.url + "/", data=json.dumps(payload).encode(),
                         headers={"Host": f"127.0.0.1:{proxy.port}",
                                  "Content-Type": "application/x-amz-json-1.0",
                                  "X-Amz-Target": f"DynamoDB_20120810.{operation}",
                                  **dict(headers)})
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", secret), "dynamodb", "eu-west-1")
    when = at or datetime.datetime.now(datetime.timezone.utc)
    request.context["timestamp"] = when.strftime(TIMESTAMP)
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return request


def send(proxy, request, body=None, drop_headers=()):
    """Sends a signed request as it is (or with another body); returns (status, JSON reply)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in drop_headers}
        conn.request("POST", "/", body=request.body if body is None else body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def item_body(value):
    return {"TableName": TABLE, "Item": {"pk": {"S": "k1"}, "v": {"S": value}}}


def test_boto3_writes_and_reads_through_the_proxy(dynamo_proxy):
    client = dynamo_client(dynamo_proxy)
    create_table(client)
    client.put_item(TableName=TABLE, Item={"pk": {"S": "k1"}, "n": {"N": "42"}})
    got = client.get_item(TableName=TABLE, Key={"pk": {"S": "k1"}}, ConsistentRead=True)

    assert got["Item"] == {"pk": {"S": "k1"}, "n": {"N": "42"}}
    assert dynamo_proxy.accepted == 3 and dynamo_proxy.rejected == 0
    assert dynamo_proxy.operations("forwarded") == ["CreateTable", "PutItem", "GetItem"]
    assert dynamo_proxy.connections == 1  # keep-alive: one connection for the three requests


def test_wrong_secret_is_refused_before_reaching_dynalite(dynamo_proxy):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        dynamo_client(dynamo_proxy, secret="not-the-secret").list_tables()

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert dynamo_proxy.rejected == 1 and dynamo_proxy.accepted == 0
    assert dynamo_proxy.operations("forwarded") == []


def test_tampered_body_with_the_original_signature_is_refused(dynamo_proxy):
    create_table(dynamo_client(dynamo_proxy))
    request = signed_request(dynamo_proxy, "PutItem", item_body("original"))
    tampered = json.dumps(item_body("tampered")).encode()
    assert len(tampered) == len(request.body)

    status, reply = send(dynamo_proxy, request, body=tampered)
    assert status == 403 and reply["__type"].endswith("#InvalidSignatureException")
    # The same signature with the body it was made for passes (so the signing above is right),
    # and only that write reached dynalite.
    assert send(dynamo_proxy, request) == (200, {})
    got = dynamo_client(dynamo_proxy).get_item(TableName=TABLE, Key={"pk": {"S": "k1"}},
                                               ConsistentRead=True)
    assert got["Item"]["v"] == {"S": "original"}
    assert dynamo_proxy.rejected == 1


def test_missing_or_stale_or_incomplete_signatures_are_refused(dynamo_proxy):
    fresh = signed_request(dynamo_proxy, "ListTables", {})
    stale = signed_request(dynamo_proxy, "ListTables", {},
                           at=datetime.datetime.now(datetime.timezone.utc)
                           - datetime.timedelta(minutes=16))
    recent = signed_request(dynamo_proxy, "ListTables", {},
                            at=datetime.datetime.now(datetime.timezone.utc)
                            - datetime.timedelta(minutes=14))
    # A header named in SignedHeaders but not sent (what curl 7.88 does for "Expect:").
    absent = signed_request(dynamo_proxy, "ListTables", {}, headers={"X-Gone": "1"})

    assert send(dynamo_proxy, fresh, drop_headers=("authorization",))[1]["__type"].endswith(
        "#MissingAuthenticationTokenException")
    status, reply = send(dynamo_proxy, stale)
    assert status == 403 and "Signature expired" in reply["message"]
    status, reply = send(dynamo_proxy, absent, drop_headers=("x-gone",))
    assert status == 403 and reply["__type"].endswith("#IncompleteSignatureException")
    assert send(dynamo_proxy, recent) == (200, {"TableNames": []})
    assert send(dynamo_proxy, absent)[0] == 200
    assert (dynamo_proxy.accepted, dynamo_proxy.rejected) == (2, 3)


def test_injected_errors_reach_the_client_then_requests_pass_again(dynamo_proxy):
    client = dynamo_client(dynamo_proxy)
    dynamo_proxy.fail_next(status=500)
    dynamo_proxy.throttle_next()

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.list_tables()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert raised.value.response["Error"]["Code"] == "InternalServerError"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.list_tables()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert client.list_tables()["TableNames"] == []
    assert dynamo_proxy.faults_injected == 2 and dynamo_proxy.pending_faults() == 0


def test_retrying_client_gets_through_injected_throttling(dynamo_proxy):
    client = dynamo_client(dynamo_proxy, attempts=4)
    create_table(client)
    dynamo_proxy.throttle_next(count=2, operation="PutItem")

    client.put_item(TableName=TABLE, Item={"pk": {"S": "k1"}})
    assert dynamo_proxy.operations() == ["CreateTable", "PutItem", "PutItem", "PutItem"]
    assert dynamo_proxy.operations("injected") == ["PutItem", "PutItem"]


def test_dropped_and_delayed_replies_look_like_network_failures(dynamo_proxy):
    client = dynamo_client(dynamo_proxy, read_timeout=0.3)
    create_table(client)

    dynamo_proxy.drop_next()
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_item(TableName=TABLE, Item={"pk": {"S": "never"}})
    dynamo_proxy.drop_next(forward=True)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_item(TableName=TABLE, Item={"pk": {"S": "applied"}})
    dynamo_proxy.delay_next(1.0)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.list_tables()

    keys = {i["pk"]["S"] for i in client.scan(TableName=TABLE)["Items"]}
    assert keys == {"applied"}


@pytest.mark.skipif(not shutil.which("curl"), reason="curl command line tool not installed")
def test_libcurl_sigv4_is_accepted_and_reuses_its_connection(dynamo_proxy):
    """curl --aws-sigv4 runs the same libcurl code as CURLOPT_AWS_SIGV4 in common/dynamo.c."""
    url = dynamo_proxy.url + "/"
    argv = ["curl", "-sS", "--fail-with-body", "--aws-sigv4", "aws:amz:eu-west-1:dynamodb",
            "--user", "AKIDEXAMPLE:secret", "-H", "Content-Type: application/x-amz-json-1.0",
            "-H", "X-Amz-Target: DynamoDB_20120810.ListTables", "-d", '{"Limit": 10}', url, url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10)

    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout == '{"TableNames":[]}' * 2
    assert (dynamo_proxy.accepted, dynamo_proxy.rejected) == (2, 0)
    assert dynamo_proxy.connections == 1


def test_dynalite_keeps_tables_across_restart_only_on_disk(dynalite_factory, tmp_path):
    for path, survives in ((None, False), (str(tmp_path / "leveldb"), True)):
        server = dynalite_factory(path=path)
        with SigV4Proxy(server.url) as proxy:
            client = dynamo_client(proxy)
            create_table(client)
            port = server.port
            server.restart()
            assert server.port == port
            assert client.list_tables()["TableNames"] == ([TABLE] if survives else [])


def test_redis_server_answers_ping_and_comes_back_on_the_same_port(redis_server):
    def ping():
        with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64)

    assert ping() == b"+PONG\r\n"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"
    redis_server.command("SET", "k", "v")
    port = redis_server.port

    redis_server.stop()
    with pytest.raises(ConnectionRefusedError):
        ping()
    redis_server.start()
    assert redis_server.port == port and ping() == b"+PONG\r\n"
    assert redis_server.command("GET", "k") is None  # in memory: the outage lost the data
