"""Start the live app's server: ``v2gsim viz [FILE] [--port N] [--host H] [--no-browser]``.

The FILE is validated here first, so a bad one ends with the scenario's problems and status 2
before any server starts. The server is Solara's (``solara run v2gsim.viz.app``) in a child
process, which gets the FILE through ``V2GSIM_VIZ_FILE``; Ctrl+C stops both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

DEFAULT_PORT = 8765  # Solara's own default


def free_port(host: str) -> int:
    """A port the OS says is free on ``host`` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def url_of(host: str, port: int) -> str:
    """The address to open: every interface (0.0.0.0, ::) is reached through localhost."""
    shown = "localhost" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/"


def command(port: int, host: str, open_browser: bool) -> list[str]:
    return [sys.executable, "-m", "solara", "run", "v2gsim.viz.app", "--port", str(port), "--host", host,
            "--open" if open_browser else "--no-open", "--production", "--log-level", "warning",
            "--no-check-version"]  # the version check asks PyPI and blocks the start until it answers


def serve(file: str | None, *, port: int | None = None, host: str = "localhost", open_browser: bool = True) -> int:
    """Validate ``file``, start the server, print its URL, wait until it stops; its exit status."""
    env = dict(os.environ)
    name = "mixed_city"
    if file:
        from v2gsim.scenario import find_scenario, load_scenario

        sc = load_scenario(file)  # ScenarioError: the CLI prints its problems and exits 2
        path = find_scenario(file)
        # the child may run elsewhere: hand it an absolute path (a bundled name stays a name)
        env["V2GSIM_VIZ_FILE"] = str(Path(path).resolve()) if Path(path).exists() and Path(file).exists() else str(file)
        name = sc.name
    else:
        env.pop("V2GSIM_VIZ_FILE", None)
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")  # Solara reports usage unless told not to
    if port is None:
        port = DEFAULT_PORT
    if port == 0:
        port = free_port(host)
    elif not port_free(host, port):  # say so now, not after printing a URL that will not answer
        print(f"v2gsim: port {port} on {host} is taken; choose another with --port (--port 0: any free port)", file=sys.stderr)
        return 2
    proc = subprocess.Popen(command(port, host, open_browser), env=env)

    def stop(signum, frame):  # a SIGTERM to `v2gsim viz` stops its server too, not only itself
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"v2gsim viz: {name} at {url_of(host, port)}  (Ctrl+C stops the server)", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
