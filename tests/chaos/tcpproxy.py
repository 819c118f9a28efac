"""tcpproxy: a tiny asyncio TCP proxy on 127.0.0.1 for the chaos rows (standard library only).

Proxy(upstream_port).start() listens on a free loopback port and forwards every connection to
127.0.0.1:upstream_port, in a background thread with its own event loop.

  freeze()  stop moving bytes in both directions; sockets stay open (no FIN, no RST), new
            connections are accepted but not forwarded: to the programs the broker looks like
            a half-open peer that went silent, which only heartbeats can detect.
  thaw()    resume.
  reset_random(fraction)  abort that share of the live connections with an RST (SO_LINGER 0).
  stop()    close everything.

Only loopback addresses are used; every wait is bounded.
"""
import asyncio
import random
import socket
import struct
import threading


class Proxy:
    def __init__(self, upstream_port, host="127.0.0.1"):
        self.host = host
        self.upstream_port = upstream_port
        self.port = None
        self.loop = None
        self.thread = None
        self.server = None
        self.flowing = None
        self.conns = set()  # (client_writer, upstream_writer)
        self.resets = 0
        self.accepted = 0

    # ---- public API (any thread)
    def start(self, timeout=10):
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.flowing = asyncio.Event()
            self.flowing.set()
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._client, self.host, 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("proxy did not start")
        return self

    def uri(self, vhost="%2f"):
        return "amqp://guest:guest@%s:%d/%s" % (self.host, self.port, vhost)

    def _call(self, fn, timeout=10):
        fut = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return fut.result(timeout)

    def freeze(self):
        async def f():
            self.flowing.clear()
        self._call(f)

    def thaw(self):
        async def f():
            self.flowing.set()
        self._call(f)

    def reset_random(self, fraction=0.5):
        async def f():
            conns = list(self.conns)
            n = 0
            for cw, uw in conns:
                if random.random() < fraction:
                    for w in (cw, uw):
                        _rst(w)
                    self.conns.discard((cw, uw))
                    n += 1
            self.resets += n
            return n
        return self._call(f)

    def live(self):
        return len(self.conns)

    def stop(self):
        if not self.loop:
            return

        async def f():
            self.flowing.set()
            self.server.close()
            for cw, uw in list(self.conns):
                for w in (cw, uw):
                    w.close()
            self.conns.clear()
        try:
            self._call(f)
        except Exception:  # noqa: BLE001
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    # ---- loop side
    async def _client(self, cr, cw):
        self.accepted += 1
        await self.flowing.wait()
        try:
            ur, uw = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.upstream_port), 10)
        except (OSError, asyncio.TimeoutError):
            _rst(cw)
            return
        pair = (cw, uw)
        self.conns.add(pair)
        await asyncio.gather(self._pump(cr, uw), self._pump(ur, cw), return_exceptions=True)
        self.conns.discard(pair)
        for w in (cw, uw):
            w.close()

    async def _pump(self, r, w):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                await self.flowing.wait()  # frozen: hold the bytes, move nothing
                w.write(data)
                await w.drain()
        except (OSError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                w.close()
            except Exception:  # noqa: BLE001
                pass


def _rst(writer):
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()
