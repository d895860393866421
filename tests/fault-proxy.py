#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A fault-injecting TCP proxy for redispool's chaos tests.

Sits between the client and a real redis-server on 127.0.0.1 and is driven
by one-line commands on stdin; it answers each command with "ok" (or
"error ...") on stdout. On start it prints "port N" (the port it listens on).

Commands:
  pass                    forward bytes untouched (the default)
  delay MS                hold each chunk MS milliseconds before forwarding
  blackhole               keep sockets open, forward nothing (half-open peer)
  fragment                forward server->client bytes one byte at a time
  drip MS                 like fragment, with MS milliseconds between bytes
  close-after N up|down   close a connection after N more bytes in that
                          direction (up = client->server)
  reset                   reset (RST) every open connection now
  close                   close every open connection now (FIN)
  refuse on|off           refuse (reset at once) new connections
  upstream PORT           send new connections to another server port
  stats                   print "stats accepted=N open=N bytes_up=N bytes_down=N"
  quit                    stop

Only loopback addresses are ever used.
"""

import asyncio
import socket
import struct
import sys


class Proxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.delay = 0.0
        self.close_after = None          # (remaining, direction)
        self.refuse = False
        self.conns = set()
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0

    async def handle(self, reader, writer):
        self.accepted += 1
        if self.refuse:
            abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            abort(writer)
            return
        conn = (writer, up_writer)
        self.conns.add(conn)
        try:
            await asyncio.gather(self.pump(reader, up_writer, "up", conn),
                                 self.pump(up_reader, writer, "down", conn))
        except Exception:
            pass
        finally:
            self.conns.discard(conn)
            for w in conn:
                try:
                    w.close()
                except Exception:
                    pass

    async def pump(self, reader, writer, direction, conn):
        while True:
            data = await reader.read(65536)
            if not data:
                try:
                    writer.write_eof()
                except Exception:
                    pass
                return
            if self.mode == "blackhole":
                continue
            if self.close_after is not None and self.close_after[1] == direction:
                remaining = self.close_after[0]
                if len(data) >= remaining:
                    writer.write(data[:remaining])
                    await writer.drain()
                    self.close_after = None
                    for w in conn:
                        w.close()
                    return
                self.close_after = (remaining - len(data), direction)
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            if direction == "down" and self.mode in ("fragment", "drip"):
                for i in range(len(data)):
                    writer.write(data[i:i + 1])
                    await writer.drain()
                    if self.mode == "drip":
                        await asyncio.sleep(self.drip)
                    else:
                        await asyncio.sleep(0)
            else:
                writer.write(data)
                await writer.drain()
            if direction == "up":
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)

    def drop_all(self, hard):
        for conn in list(self.conns):
            for w in conn:
                if hard:
                    abort(w)
                else:
                    w.close()
        self.conns.clear()


def abort(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def control(proxy, server):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        words = line.decode().split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        reply = "ok"
        try:
            if cmd == "pass":
                proxy.mode, proxy.delay = "pass", 0.0
            elif cmd == "delay":
                proxy.mode, proxy.delay = "pass", int(args[0]) / 1000.0
            elif cmd == "blackhole":
                proxy.mode = "blackhole"
            elif cmd == "fragment":
                proxy.mode = "fragment"
            elif cmd == "drip":
                proxy.mode, proxy.drip = "drip", int(args[0]) / 1000.0
            elif cmd == "close-after":
                proxy.close_after = (int(args[0]), args[1])
            elif cmd == "reset":
                proxy.drop_all(True)
            elif cmd == "close":
                proxy.drop_all(False)
            elif cmd == "refuse":
                proxy.refuse = args[0] == "on"
            elif cmd == "upstream":
                proxy.upstream_port = int(args[0])
            elif cmd == "stats":
                reply = "stats accepted=%d open=%d bytes_up=%d bytes_down=%d" % (
                    proxy.accepted, len(proxy.conns), proxy.bytes_up, proxy.bytes_down)
            elif cmd == "quit":
                print("ok", flush=True)
                break
            else:
                reply = "error unknown command " + cmd
        except (IndexError, ValueError) as e:
            reply = "error " + str(e)
        print(reply, flush=True)
    server.close()
    proxy.drop_all(True)


async def main():
    upstream = int(sys.argv[1])
    proxy = Proxy(upstream)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print("port %d" % port, flush=True)
    await control(proxy, server)


if __name__ == "__main__":
    asyncio.run(main())
