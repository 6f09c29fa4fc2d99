#!/usr/bin/env python3
"""Delay proxy for the Azure benchmarks: listens on 127.0.0.1:LISTEN, forwards every
connection to 127.0.0.1:UPSTREAM and passes each chunk of the answers on DELAY_MS after it
arrived (requests go through at once), as a network round trip to a real store would.

Usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS
"""
import asyncio
import sys

listen, upstream, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000


async def pipe(reader, writer, lag):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def feed():
        while data := await reader.read(65536):
            await q.put((loop.time() + lag, data))
        await q.put((0, b""))

    task = asyncio.create_task(feed())
    try:
        while True:
            due, data = await q.get()
            if not data:
                break
            await asyncio.sleep(max(0, due - loop.time()))
            writer.write(data)
            await writer.drain()
    finally:
        task.cancel()
        writer.close()


async def serve(cr, cw):
    ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
    await asyncio.gather(pipe(cr, uw, 0), pipe(ur, cw, delay), return_exceptions=True)


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", listen, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
