"""python -m dev.simulators --host 127.0.0.1 --port 8090"""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import make_server

from .app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="veo-relay provider simulators")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--quiet", action="store_true", help="no per-request access log")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # threaded: SSE streams and slow polls must not block other requests.
    server = make_server(args.host, args.port, create_app(), threaded=True)
    logging.getLogger("veo-sim").info("listening on http://%s:%d", args.host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
