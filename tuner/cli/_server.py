"""The dashboard's server: the standard library's WSGI server, one thread per request (a browser loads the
page's assets in parallel). Imported by `tuner dashboard` only: http.server and email cost every other
command's start-up."""

from __future__ import annotations

import errno
import socketserver
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tuner.errors import TunerError


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Requests are not logged: the dashboard polls the API every few seconds."""


def bind(host: str, port: int) -> _ThreadingServer:
    """A server listening on host:port with no app yet; a port in use raises TunerError naming it."""
    try:
        return make_server(host, port, lambda environ, start_response: [], server_class=_ThreadingServer,
                           handler_class=_QuietHandler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise TunerError(f"port {port} is already in use on {host}; pick another with --port") from None
        if err.errno == errno.EACCES:
            raise TunerError(f"no permission to listen on port {port}; use a port above 1023") from None
        raise TunerError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
