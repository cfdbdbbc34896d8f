#!/usr/bin/env python3
"""A client that is killed with SIGKILL mid-export by the load test: connects, then creates exports
(pipelined, keeping every fd it receives) until it is killed. Prints "go" once connected."""
import json, socket, sys

sock_path, device = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
print("go", flush=True)
fds, buf, n = [], b"", 0
req = lambda i: (json.dumps({"jsonrpc": "2.0", "id": i, "method": "export.create",
                             "params": {"device": device, "region": 0, "offset": 0, "length": 4096}}) + "\n").encode()
while True:
    for _ in range(4):
        n += 1
        s.sendall(req(n))
    got = 0
    while got < 4:
        data, new_fds, _, _ = socket.recv_fds(s, 65536, 16)
        if not data:
            sys.exit(0)
        fds += new_fds
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if b'"id"' in line:
                got += 1
