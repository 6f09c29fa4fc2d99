"""What the loopback stand-ins in tests/fakes/ share: a threaded HTTP server that announces the
port it got (the first line of stdout, which the tests read) and serves until interrupted."""

from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def serve(handler, host, port):
    """Listens on host:port (0: any free port), prints the port, serves until ^C."""
    httpd = Server((host, port), handler)
    print(httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
