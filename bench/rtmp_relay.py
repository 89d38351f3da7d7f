"""Shared by the bench/*-vs-nginx-rtmp.sh harnesses (imported with bench/ on PYTHONPATH).

Relay: one RTMP publish goes through it on its way to the server; it forwards bytes as they come
and parses the client -> server chunk stream, noting when each video message has fully passed
(its last byte handed to the server socket) and which video messages are keyframes.
Inotify: wakes a loop when a file or directory appears (created, or renamed into place).
"""
import ctypes, os, select, socket, threading, time

libc = ctypes.CDLL(None, use_errno=True)
IN_MOVED_TO, IN_CREATE = 0x80, 0x100


class Relay:
    """One publish: forwards it to the server on 127.0.0.1:server_port.

    sent: (RTMP timestamp in ms, time.time() when the message had passed), every video message
    in the order sent (decode order). keyframes: RTMP timestamps of the video keyframes, not
    counting the AVC sequence header. Limits: no extended timestamps (streams under 4.6 h).
    """

    def __init__(self, server_port):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.server_port, self.sent, self.keyframes = self.listener.getsockname()[1], server_port, [], []
        self.buf, self.skip, self.chunk_size, self.streams = bytearray(), 1 + 1536 + 1536, 128, {}
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.server_port))
        for s in (client, server): s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pipe, args=(server, client, None), daemon=True).start()
        pipe(client, server, self)

    def feed(self, data, now):  # client -> server RTMP: C0+C1+C2, then chunks (no extended ts)
        buf = self.buf; buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(buf)); del buf[:n]; self.skip -= n
                if self.skip: return
            if not buf: return
            fmt, cs = buf[0] >> 6, buf[0] & 63
            head = 1 + (cs == 0) + 2 * (cs == 1); end = head + (11, 7, 3, 0)[fmt]
            if len(buf) < end: return
            if cs < 2: cs = 64 + buf[1] + (256 * buf[2] if cs == 1 else 0)
            st = self.streams.setdefault(cs, dict(ts=0, delta=0, len=0, type=0, left=0, body=b""))
            h = bytes(buf[head:end])
            length = int.from_bytes(h[3:6], "big") if fmt < 2 else st["len"]
            n = min(self.chunk_size, st["left"] or length)
            if len(buf) < end + n: return
            if st["left"] == 0:  # a new message; format 3 repeats the last delta
                if fmt < 3: st["delta"] = int.from_bytes(h[0:3], "big")
                st["ts"] = st["delta"] if fmt == 0 else st["ts"] + st["delta"]
                if fmt < 2: st["len"], st["type"] = length, h[6]
                st["left"], st["body"] = length, b""
            if st["type"] == 1: st["body"] += bytes(buf[end:end + n])  # Set Chunk Size
            elif st["type"] == 9 and len(st["body"]) < 2:  # video: frame type, AVC packet type
                st["body"] += bytes(buf[end:end + min(n, 2 - len(st["body"]))])
            del buf[:end + n]; st["left"] -= n
            if st["left"] == 0 and st["type"] == 9:
                self.sent.append((st["ts"], now))
                body = st["body"]  # FLV VideoTagHeader: frame type 1 = key; AVC (7) packet 0 = header
                if body and body[0] >> 4 == 1 and not (body[0] & 15 == 7 and body[1:2] != b"\x01"):
                    self.keyframes.append(st["ts"])
            if st["left"] == 0 and st["type"] == 1:
                self.chunk_size = int.from_bytes(st["body"][:4], "big") & 0x7FFFFFFF


def pipe(src, dst, relay):
    try:
        while data := src.recv(1 << 16):
            now = time.time(); dst.sendall(data)
            if relay: relay.feed(data, now)
        dst.shutdown(socket.SHUT_WR)
    except OSError: pass


class Inotify:
    """Wakes a loop when a file or directory appears in a watched directory. Events are drained,
    not parsed: the loop looks for itself what is new."""

    def __init__(self, mask=IN_CREATE | IN_MOVED_TO):
        self.fd, self.mask = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), mask
        if self.fd < 0: raise OSError(ctypes.get_errno(), "inotify_init1")

    def watch(self, path):  # idempotent: watching a directory again changes nothing
        if libc.inotify_add_watch(self.fd, os.fsencode(path), self.mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def wait(self, timeout):  # True when woken by an event, False after timeout seconds
        if not select.select([self.fd], [], [], timeout)[0]: return False
        try:
            while os.read(self.fd, 1 << 16): pass
        except BlockingIOError: pass
        return True

    def close(self): os.close(self.fd)
