#!/usr/bin/env python3
"""Inside the guest, on a kernel with iommufd: drives the daemon's iommufd importer over the socket with the
Python client. One export of the NVMe CMB, an importer mapped at its IOVA, a reset and a memory off/on: each
revoke arrives as importer.invalidated (state revoked), each restore as importer.remapped (state mapped), and
importer.get agrees. Prints SMOKE lines as daemon-smoke.sh does; exit status 0 when every step answered.

Usage: importer-smoke.py PROJECT_DIR SOCKET DEVICE
"""
import os
import sys

project, socket_path, device = sys.argv[1:4]
sys.path.insert(0, os.path.join(project, "clients", "python"))
from vfio_export.client import Client  # noqa: E402

failed = False


def check(what, ok):
    global failed
    print("SMOKE %s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    failed = failed or not ok


with Client.connect(socket_path, timeout=60) as c:
    check("importer.* is listed on a kernel with iommufd", "importer.get" in c.methods())
    with c.export(device, 2, 0, 4096) as e:
        a = c.call("importer.attach", {"export_id": e.export_id})
        imp = {"importer_id": a["importer_id"]}
        check("the iommufd importer remaps on restore", a.get("remaps_on_restore") is True)
        m = c.call("importer.map", imp)
        check("mapped at IOVA 0x100000: %r" % m, m["state"] == "mapped" and m["iova"] == 0x100000)
        c.reset(device)
        inv = c.next_notification("importer.invalidated", 60)
        check("reset: importer.invalidated, state revoked: %r" % inv, inv is not None and inv["state"] == "revoked")
        rem = c.next_notification("importer.remapped", 60)
        check("reset: importer.remapped, state mapped, 1 remap: %r" % rem,
              rem is not None and rem["state"] == "mapped" and rem["remaps"] == 1)
        c.set_memory(device, False)
        inv = c.next_notification("importer.invalidated", 60)
        check("memory off: importer.invalidated", inv is not None and inv["state"] == "revoked")
        g = c.call("importer.get", imp)
        check("importer.get while memory is off: revoked, 2 invalidations: %r" % g,
              g["state"] == "revoked" and g["invalidations"] == 2)
        c.set_memory(device, True)
        rem = c.next_notification("importer.remapped", 60)
        check("memory on: importer.remapped, 2 remaps", rem is not None and rem["remaps"] == 2)
        check("importer.detach", c.call("importer.detach", imp)["detached"] is True)
        c.release(e)
sys.exit(1 if failed else 0)
