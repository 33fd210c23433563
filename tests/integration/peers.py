"""A raw peer of the broker in Python (pyzmq + msgpack): an independent implementation of
proto/PROTOCOL.md, used to send what our C peers never would."""
import msgpack
import zmq

SIGNATURE = b"PARLEY1"
READY, REQUEST, REPLY, ERROR, HEARTBEAT, DISCONNECT, DRAIN = range(1, 8)


def envelope(command, header, signature=SIGNATURE):
    """The first frame of every message: signature, command byte, MessagePack header."""
    packed = header if isinstance(header, bytes) else msgpack.packb(header)
    return signature + bytes([command]) + packed


class RawPeer:
    def __init__(self, endpoint, socket_type=zmq.DEALER):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(socket_type)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, command, header, payload=None, signature=SIGNATURE):
        frames = [envelope(command, header, signature)]
        if payload is not None:
            frames.append(payload)
        self.sock.send_multipart(frames)

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def recv(self, timeout_ms=3000):
        if not self.sock.poll(timeout_ms):
            return None
        frames = self.sock.recv_multipart()
        assert frames[0][:7] == SIGNATURE
        header = msgpack.unpackb(frames[0][8:], raw=False)
        return frames[0][7], header, frames[1] if len(frames) > 1 else None

    def close(self):
        self.sock.close()


def echo_payload(data=b"x", **extra):
    body = {"data": data}
    body.update(extra)
    return msgpack.packb(body)


class ServiceClient:
    """Requests to services through the broker, many in flight, like a gateway makes them:
    call() for one at a time, send() + collect() for pipelines (with order keys)."""

    def __init__(self, endpoint):
        import time as _time
        self._time = _time
        self.peer = RawPeer(endpoint)
        self.next_id = 0
        self.answers = {}

    def send(self, service, type_, body, timeout_ms=20000, order_key=None):
        self.next_id += 1
        header = {"id": self.next_id, "service": service, "type": type_,
                  "timeout_ms": timeout_ms}
        if order_key:
            header["order_key"] = order_key
        self.peer.send(REQUEST, header, msgpack.packb(body))
        return self.next_id

    def _take(self, timeout_ms):
        answer = self.peer.recv(timeout_ms=timeout_ms)
        if not answer or answer[0] not in (REPLY, ERROR):
            return
        command, header, payload = answer
        if command == REPLY:
            self.answers[header["id"]] = msgpack.unpackb(payload)
        else:
            self.answers[header["id"]] = {"error": header["code"],
                                          "message": header.get("message", "")}

    def collect(self, ids, timeout_s=60):
        """Waits for every id; returns {id: reply dict or {"error", "message"}}."""
        deadline = self._time.monotonic() + timeout_s
        while any(i not in self.answers for i in ids) and self._time.monotonic() < deadline:
            self._take(500)
        missing = [i for i in ids if i not in self.answers]
        assert not missing, f"{len(missing)} requests unanswered"
        return {i: self.answers.pop(i) for i in ids}

    def call(self, service, type_, body, timeout_ms=20000, order_key=None):
        request_id = self.send(service, type_, body, timeout_ms, order_key)
        return self.collect([request_id], timeout_s=timeout_ms / 1000 + 5)[request_id]

    def close(self):
        self.peer.close()
