#!/usr/bin/env python3
"""A vfio-export client in plain Python (standard library only, Python 3.9+ for socket.recv_fds).

It connects to the daemon's Unix socket, reads the greeting, lists the devices, exports a slice of a BAR as a
dma-buf, checks the fd it received (its size), watches the events of that export, and releases it.

    python3 docs/example_client.py --socket run/vfio-export.sock --device 0000:01:00.0 --region 2 --length 0x2000

Each step prints one JSON line, so scripts (and the project's tests) can read what happened.
"""
import argparse
import json
import os
import socket
import sys


class Client:
    """One connection. Fds arrive with the recvmsg that returns the first byte of their line, possibly together
    with bytes of earlier lines: every fd received goes into a FIFO, and a complete line that names N fds (results
    with "fd_index") takes the next N."""

    MAX_FDS = 253  # SCM_MAX_FD: the most one message can carry

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.fds = []
        self.next_id = 1
        self.events = []
        hello = self.read()
        if hello[0].get("method") != "hello":
            raise RuntimeError("no greeting: %r" % (hello[0],))
        self.hello = hello[0]["params"]

    def read(self):
        """The next line as (message, fds)."""
        while b"\n" not in self.buf:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, self.MAX_FDS)
            self.fds.extend(fds)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        results = msg if isinstance(msg, list) else [msg]
        wanted = sum(1 for r in results if isinstance(r, dict) and "fd_index" in (r.get("result") or {}))
        mine, self.fds = self.fds[:wanted], self.fds[wanted:]
        return msg, mine

    def call(self, method, params=None):
        """Sends a request and returns (result, fds); raises RuntimeError with the server's error."""
        rid = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        self.sock.sendall((json.dumps(req) + "\n").encode())
        while True:
            msg, fds = self.read()
            if isinstance(msg, dict) and msg.get("method") == "event":
                self.events.append(msg["params"])
                continue
            if isinstance(msg, dict) and msg.get("id") == rid:
                if "error" in msg:
                    for fd in fds:
                        os.close(fd)
                    e = msg["error"]
                    raise RuntimeError("%s (error %d)" % (e["message"], e["code"]))
                return msg["result"], fds

    def next_event(self):
        while not self.events:
            msg, fds = self.read()
            for fd in fds:
                os.close(fd)
            if isinstance(msg, dict) and msg.get("method") == "event":
                self.events.append(msg["params"])
        return self.events.pop(0)

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.sock.close()


def show(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=os.environ.get("VFIO_EXPORT_SOCKET", "run/vfio-export.sock"))
    ap.add_argument("--device", help="PCI address (default: the first device)")
    ap.add_argument("--region", type=int, default=None, help="BAR index (default: the first MMIO BAR)")
    ap.add_argument("--offset", type=lambda s: int(s, 0), default=0)
    ap.add_argument("--length", type=lambda s: int(s, 0), default=0x1000)
    args = ap.parse_args()

    c = Client(args.socket)
    show("hello", server=c.hello["server"], version=c.hello["version"], backend=c.hello["backend"])

    devices = c.call("device.list")[0]["devices"]
    show("devices", devices=[d["device"] for d in devices])
    dev = next((d for d in devices if d["device"] == args.device), None) if args.device else devices[0]
    if dev is None:
        show("error", message="no such device: %s" % args.device)
        return 1
    region = args.region
    if region is None:
        region = next(r["index"] for r in dev["regions"] if r["kind"] == "mmio" and r["size"] > 0)

    sub = c.call("events.subscribe", {"devices": [dev["device"]]})[0]
    show("subscribed", subscription=sub["subscription"], heads=sub["heads"])

    try:
        result, fds = c.call("export.create", {"device": dev["device"], "region": region,
                                               "offset": args.offset, "length": args.length})
    except RuntimeError as e:
        show("error", message=str(e))
        return 1
    fd = fds[result["fd_index"]]
    size = os.lseek(fd, 0, os.SEEK_END)
    show("exported", export_id=result["export_id"], state=result["state"], size=result["size"], fd_size=size)

    c.call("export.release", {"export_id": result["export_id"]})
    os.close(fd)
    seen = []
    while not seen or seen[-1]["type"] != "export.released":
        e = c.next_event()
        if e.get("export_id") == result["export_id"]:
            seen.append(e)
    show("released", export_id=result["export_id"], events=[e["type"] for e in seen])
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
