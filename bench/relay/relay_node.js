#!/usr/bin/env node
// relay_node.js - the Node.js baseline of the websocket benchmark: a "room relay" written the
// way teams usually run one, one process on the `ws` library with its native `bufferutil`
// helper, no compression. The benchmark compares Parley's gateway with it and with the bare
// libwebsockets relay (relay_lws.c), which both speak the same protocol:
//
//   * listens on 127.0.0.1, port from `--port N` or RELAY_PORT (0: one the system picks);
//     websocket upgrade on any path (clients use /ws); no TLS, no permessage-deflate, no auth;
//   * a socket's first text frame is {"type":"join","room":"<name>"} (1..64 bytes, no quote,
//     backslash or control character); the answer is {"type":"joined","room":"<name>"};
//     anything else is closed with 1008;
//   * every later text frame is sent verbatim to every other member of the room, never back to
//     its sender; a binary frame closes the socket with 1003;
//   * a socket leaves its room when it closes; an empty room is forgotten;
//   * a socket with more than 1,000 frames or 1 MB waiting to go out is closed with 1008;
//   * frames up to 64 KB (more: closed with 1009, by ws); pings are answered by ws.
//
// Prints `listening port=N bufferutil=yes|no` once ready ("yes" only when ws loaded the native
// helper, not its JavaScript fallback); exits 0 on SIGTERM or SIGINT. Logs nothing per frame.
'use strict';

const { WebSocketServer } = require('ws');

const MAX_PENDING_FRAMES = 1000;
const MAX_PENDING_BYTES = 1 << 20;
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_ROOM_BYTES = 64;
const ROOM_NAME = /^[^"\\\u0000-\u001f]+$/;

function parsePort(argv, env) {
  const at = argv.indexOf('--port');
  const text = at >= 0 ? argv[at + 1] : env.RELAY_PORT;
  const port = Number(text);
  if (text === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('usage: relay_node.js --port N (or RELAY_PORT=N)\n');
    process.exit(2);
  }
  return port;
}

// True when ws runs on the compiled bufferutil (ws requires it at load time when present).
function nativeBufferutil() {
  return Object.keys(require.cache).some((path) => /[\\/]bufferutil[\\/].*\.node$/.test(path));
}

// Returns the room a join frame names, or null when the frame is not a valid join.
function joinRoom(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch (e) {
    return null;
  }
  if (!frame || frame.type !== 'join' || typeof frame.room !== 'string') return null;
  const room = frame.room;
  if (!ROOM_NAME.test(room) || Buffer.byteLength(room) > MAX_ROOM_BYTES) return null;
  return room;
}

const rooms = new Map(); // room name -> Set of sockets

function leave(ws) {
  const members = ws.members;
  if (!members) return;
  members.delete(ws);
  if (members.size === 0) rooms.delete(ws.room);
  ws.members = null;
}

// Sends one frame to every other member; a member that cannot keep up is closed.
function relay(sender, data) {
  for (const peer of sender.members) {
    if (peer === sender || peer.readyState !== 1 /* OPEN */) continue;
    if (peer.pending >= MAX_PENDING_FRAMES ||
        peer.bufferedAmount + data.length > MAX_PENDING_BYTES) {
      peer.close(1008, 'too slow');
      continue;
    }
    peer.pending++;
    peer.send(data, { binary: false }, peer.sent);
  }
}

function onConnection(ws) {
  ws.room = null;
  ws.members = null;
  ws.pending = 0;
  ws.sent = () => { ws.pending--; };
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      ws.close(1003, 'text frames only');
      return;
    }
    if (ws.members) {
      relay(ws, data);
      return;
    }
    const room = joinRoom(data);
    if (room === null) {
      ws.close(1008, 'first frame must be a join');
      return;
    }
    let members = rooms.get(room);
    if (!members) {
      members = new Set();
      rooms.set(room, members);
    }
    members.add(ws);
    ws.room = room;
    ws.members = members;
    ws.send('{"type":"joined","room":"' + room + '"}');
  });
  ws.on('close', () => leave(ws));
  ws.on('error', () => {}); // 'close' follows
}

const port = parsePort(process.argv.slice(2), process.env);
const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: MAX_PAYLOAD_BYTES,
  clientTracking: false,
});
server.on('connection', onConnection);
server.on('error', (err) => {
  process.stderr.write(`relay_node: ${err.message}\n`);
  process.exit(1);
});
server.on('listening', () => {
  const line = `listening port=${server.address().port} bufferutil=${nativeBufferutil() ? 'yes' : 'no'}\n`;
  process.stdout.write(line);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
