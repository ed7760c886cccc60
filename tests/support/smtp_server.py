"""A real SMTP server for switchyard's email tests (aiosmtpd).

Usage: smtp_server.py PORT_FILE MAIL_DIR
Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, and stores
each accepted message as MAIL_DIR/<n>.eml. Recipients decide the reply:
tempfail@... gets 451 (transient), nouser@... gets 550 (permanent).
"""
import asyncio
import os
import socket
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, mail_dir):
        self.mail_dir = mail_dir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local == "tempfail":
            return "451 4.3.0 Mailbox temporarily unavailable"
        if local == "nouser":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.mail_dir, f"{self.count}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    port_file, mail_dir = sys.argv[1], sys.argv[2]
    # aiosmtpd's controller checks the port it was given, so pick a free one first.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    controller = Controller(Handler(mail_dir), hostname="127.0.0.1", port=port)
    controller.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(port_file + ".tmp", port_file)
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.Event().wait())
    except Exception:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
