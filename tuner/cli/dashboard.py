"""`tuner dashboard`: optuna-dashboard on the study database.

The server is optuna-dashboard's WSGI app on the standard library's WSGI server (`_server`). The port is
bound before anything else happens, so a port in use fails at once with one line instead of a traceback
after the notes are written.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from tuner.cli._common import JsonOption, Output, QuietOption, StorageOption, quiet_optuna, safe, stderr, storage_url
from tuner.errors import TunerError
from tuner.study.limits import MAX_REFRESH_S
from tuner.text import printable

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from tuner.storage import StudyHandle

Publisher = Callable[["StudyHandle"], object]  # tuner.analysis.notes.publish, imported only when it runs


def dashboard(
    storage: StorageOption = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on. The dashboard has NO authentication: keep 127.0.0.1 "
                     "unless the network in front of it is trusted (0.0.0.0 listens on every interface)."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to listen on.")] = 8080,
    notes: Annotated[
        bool, typer.Option("--notes/--no-notes", help="Write each study's note and curve chart before starting.")
    ] = True,
    refresh: Annotated[
        float, typer.Option("--refresh", min=0, max=MAX_REFRESH_S,
                            help="Seconds between updates of the notes and charts (0: never).")
    ] = 60,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Start optuna-dashboard on the study database (no authentication: it binds 127.0.0.1 by default).

    Anyone who can reach the port can read and change every study, so listen on 127.0.0.1 and reach it
    through an SSH tunnel (ssh -L 8080:127.0.0.1:8080 host) rather than opening it to a network. Before
    it starts, each tuner study gets a note with its spec and init-scale guess, and a chart of the
    validation curves of its best trials, kept up to date while it runs. Ctrl-C stops it. With --json, one
    line with its address (`url`) and the database's is printed once it listens.

    Example: tuner dashboard --storage postgresql+psycopg://tuner@db/tuner --port 8080
    """
    from tuner.cli._server import bind

    output = Output(quiet, as_json)
    quiet_optuna()
    url = storage_url(storage)
    server = bind(host, port)
    signal.signal(signal.SIGTERM, _stop)  # `docker stop` ends it like Ctrl-C: exit 0
    stop = threading.Event()
    try:
        _start(url, server, notes=notes, refresh=refresh, stop=stop)
        address = f"http://{printable(host)}:{port}/dashboard/"
        output.emit({"url": address, "storage": safe(url)}, lambda: stderr.print(
            f"optuna-dashboard on {safe(url)} at {address} (no authentication; Ctrl-C stops it)", markup=False,
            soft_wrap=True))
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()


def _start(url: str, server: WSGIServer, *, notes: bool, refresh: float, stop: threading.Event) -> None:
    """Check the database, write the notes (and keep them fresh), and give the server its app."""
    import optuna_dashboard  # loaded only when the dashboard starts, not for every `tuner` command

    from tuner.analysis.notes import publish
    from tuner.storage import open_storage, optuna_storage

    open_storage(url)
    if notes:
        _publish_all(url, publish)
        if refresh > 0:
            threading.Thread(target=_keep_publishing, args=(url, publish, refresh, stop), name="notes",
                             daemon=True).start()
    server.set_app(optuna_dashboard.wsgi(optuna_storage(url)))


def _publish_all(url: str, publish: Publisher) -> None:
    from tuner.storage import list_study_records, open_storage, open_study

    for record in list_study_records(open_storage(url)):
        try:
            publish(open_study(url, record.name))
        except TunerError as err:
            stderr.print(printable(f"warning: no note for study '{record.name}': {err}"), markup=False,
                         soft_wrap=True)


def _keep_publishing(url: str, publish: Publisher, interval: float, stop: threading.Event) -> None:
    """Refresh the notes and charts while the dashboard runs: workers keep finishing trials meanwhile."""
    while not stop.wait(interval):
        try:
            _publish_all(url, publish)
        except Exception as err:  # noqa: BLE001 - the dashboard keeps serving; the next refresh retries
            stderr.print(printable(f"warning: notes not refreshed: {type(err).__name__}: {err}"), markup=False,
                         soft_wrap=True)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    """Add `dashboard` to the root app."""
    app.command("dashboard")(dashboard)
