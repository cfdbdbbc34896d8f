#!/usr/bin/env python3
"""A vfio-export client in plain Python (standard library only, Python 3.9+), on the vfio_export package.

It connects to the daemon's Unix socket, reads the greeting, lists the devices, exports a slice of a BAR as a
dma-buf, checks the fd it received (its size), watches the events of that export, and releases it.

    python3 docs/example_client.py --socket /run/vfio-export/vfio-export.sock --device 0000:01:00.0 --region 2 --length 0x2000

Each step prints one JSON line, so scripts (and the project's tests) can read what happened. The package lives in
clients/python (`pip install clients/python`, or run this file from the repository as it is).
"""
import argparse
import json
import os
import sys

try:
    import vfio_export
except ImportError:  # run from a checkout: the package beside it, not installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    import vfio_export

from vfio_export import Client, RpcError


def show(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=None,
                    help="the daemon's socket (default: $VFIO_EXPORT_SOCKET, else /run/vfio-export/vfio-export.sock "
                         "as root, $XDG_RUNTIME_DIR/vfio-export/vfio-export.sock otherwise)")
    ap.add_argument("--device", help="PCI address (default: the first device)")
    ap.add_argument("--region", type=int, default=None, help="BAR index (default: the first MMIO BAR)")
    ap.add_argument("--offset", type=lambda s: int(s, 0), default=0)
    ap.add_argument("--length", type=lambda s: int(s, 0), default=0x1000)
    args = ap.parse_args()

    with Client.connect(args.socket) as c:
        show("hello", server=c.hello["server"], version=c.hello["version"], backend=c.hello["backend"])

        devices = c.devices()
        show("devices", devices=[d.device for d in devices])
        dev = next((d for d in devices if d.device == args.device), None) if args.device else devices[0]
        if dev is None:
            show("error", message="no such device: %s" % args.device)
            return 1
        region = args.region
        if region is None:
            region = next(r.index for r in dev.regions if r.kind == "mmio" and r.size > 0)

        sub = c.subscribe([dev.device])
        show("subscribed", subscription=sub.id, heads=sub.heads)

        try:
            export = c.export(dev.device, region, args.offset, args.length)
        except RpcError as e:
            show("error", message=str(e))
            return 1
        with export:
            size = os.lseek(export.fileno(), 0, os.SEEK_END)
            show("exported", export_id=export.export_id, state=export.state, size=export.size, fd_size=size)
            c.release(export)

        seen = []
        for event in sub.events(timeout=30):
            if event.export_id == export.export_id:
                seen.append(event)
                if event.type == "export.released":
                    break
        show("released", export_id=export.export_id, events=[e.type for e in seen])
    return 0


if __name__ == "__main__":
    sys.exit(main())
