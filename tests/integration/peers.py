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
