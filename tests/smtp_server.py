"""A small real SMTP server on loopback for tests: Django's SMTP backend and smtplib talk to
it over a socket, and each test chooses how it answers (accept, drop the connection,
answer 4xx "try later", or 5xx "never")."""

from __future__ import annotations

import socketserver
import threading


class SmtpServer:
    """``mode``: ``accept`` | ``disconnect`` (closes right after connecting) | ``busy``
    (451 to MAIL FROM) | ``reject`` (550 to RCPT TO), for the first ``times`` connections
    (all of them when None), then ``accept``."""

    def __init__(self, mode: str = "accept", times: int | None = None):
        self._mode, self.times = mode, times
        self.delivered: list[dict] = []
        self.connections = 0
        outer = self
        lock = threading.Lock()

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                with lock:
                    outer.connections += 1
                    mode = outer.mode_for(outer.connections)
                if mode == "disconnect":
                    return
                self.reply("220 test ESMTP")
                sender, recipients = "", []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode(errors="replace").strip()
                    verb = command[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 test")
                    elif verb == "MAIL":
                        if mode == "busy":
                            self.reply("451 4.3.0 try again later")
                        else:
                            sender = command[10:]
                            self.reply("250 ok")
                    elif verb == "RCPT":
                        if mode == "reject":
                            self.reply("550 5.1.1 no such user")
                        else:
                            recipients.append(command[8:])
                            self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        body = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            body.append(chunk)
                        outer.delivered.append(
                            {"from": sender, "to": recipients, "data": b"".join(body).decode()}
                        )
                        self.reply("250 queued")
                    elif verb == "RSET":
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def mode_for(self, connection: int) -> str:
        return self._mode if self.times is None or connection <= self.times else "accept"

    def __enter__(self) -> SmtpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
