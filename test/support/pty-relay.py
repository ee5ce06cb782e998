#!/usr/bin/env python3
"""A stand-in for a kernel TPM character device, for the device transport's tests.

It opens a pseudo-terminal in raw mode (no echo, no line discipline
translation), prints the slave's path (/dev/pts/N, a real character device),
and relays every command written there to swtpm's raw command port, framing
commands by the size in their header. The test opens the slave with the
device transport; this process holds only the master.

Like a kernel TPM device (drivers/char/tpm/tpm-dev-common.c), each open has
its own answer: when the last opener closes the slave, anything it had not
read and any answer still owed to it are thrown away. (A pty's input queue
outlives close(), so the relay flushes it itself.)

Usage: pty-relay.py HOST PORT [zero-reads]. With zero-reads the slave's read()
returns 0 when nothing is there (VMIN = VTIME = 0), as a kernel TPM device's
read does before its answer is ready; otherwise it fails with EAGAIN, as a
nonblocking terminal's does. Control on stdin, one JSON object per line:
  {"next": ACTION}    what to do with the next command (queued, in order; acknowledged by a
                      "queued" event, since stdin and the pty are separate channels), where ACTION is
                      {"do": "pass"}                 forward, answer (the default)
                      {"do": "hold"}                 forward, keep the answer until "release" or close
                      {"do": "truncate", "keep": n}  forward, answer only the first n bytes
                      {"do": "append", "hex": h}     forward, answer followed by extra bytes
                      {"do": "replace", "hex": h}    do not forward; answer these bytes
                      {"do": "delay", "ms": n}       forward, answer after n ms
                      {"do": "split", "at": n, "ms": m}  forward, answer n bytes, then the rest m ms later
  {"release": true}   write the held answer now
  {"sync": true}      answered by a "synced" event: every event before it has been written
Events on stdout, one JSON object per line: ready (with path), opened, closed,
queued, synced, command (cc, size), answered, held, released, discarded, truncated.
Exits when stdin closes.
"""
import json
import os
import pty
import select
import socket
import struct
import sys
import termios
import time
import tty


def emit(ev, **kw):
    kw["ev"] = ev
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("swtpm closed the connection")
        out += chunk
    return bytes(out)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    zero_reads = len(sys.argv) > 3 and sys.argv[3] == "zero-reads"
    master, slave = pty.openpty()
    # Raw mode on the slave's termios (set through the master): no echo, no
    # CR/NL translation, no signals, 8-bit clean, read() returns what is there.
    tty.setraw(master)
    if zero_reads:
        attrs = termios.tcgetattr(master)
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(master, termios.TCSANOW, attrs)
    path = os.ttyname(slave)
    os.close(slave)

    tpm = socket.create_connection((host, port), timeout=60)
    tpm.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def forward(cmd):
        # swtpm frames a command by its first read of >= 10 bytes: one sendall.
        tpm.sendall(cmd)
        head = recv_exact(tpm, 10)
        size = struct.unpack(">I", head[2:6])[0]
        return head + (recv_exact(tpm, size - 10) if size > 10 else b"")

    def answer(data):
        view = memoryview(data)
        while view:
            n = os.write(master, view)
            view = view[n:]

    actions = []
    held = None
    cmdbuf = bytearray()
    is_open = False
    stdin_buf = b""

    p = select.poll()
    p.register(master, select.POLLIN)
    p.register(sys.stdin.fileno(), select.POLLIN)
    probe = select.poll()
    probe.register(master, select.POLLIN)

    emit("ready", path=path, zero_reads=zero_reads)
    while True:
        # Is anyone holding the slave open? The master reports HUP while nobody does.
        hup = any(ev & select.POLLHUP for _, ev in probe.poll(0))
        if hup and is_open:
            is_open = False
            if held is not None:
                held = None
                emit("discarded")
            cmdbuf.clear()
            # Commands the closed opener wrote and we had not read: dropped with it.
            while probe.poll(0) and any(ev & select.POLLIN for _, ev in probe.poll(0)):
                try:
                    if not os.read(master, 65536):
                        break
                except OSError:
                    break
            # Bytes sent to the closed opener and not read: a pty keeps them for
            # the next opener, a TPM device does not. Flush them.
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                termios.tcflush(fd, termios.TCIFLUSH)
                os.close(fd)
            except OSError:
                pass
            emit("closed")
        elif not hup and not is_open:
            is_open = True
            emit("opened")

        events = p.poll(2 if hup else 50)
        for fd, ev in events:
            if fd == sys.stdin.fileno():
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                stdin_buf += chunk
                while b"\n" in stdin_buf:
                    line, stdin_buf = stdin_buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    msg = json.loads(line)
                    if "next" in msg:
                        actions.append(msg["next"])
                        emit("queued")
                    if msg.get("sync"):
                        emit("synced")
                    if msg.get("release") and held is not None:
                        data, held = held, None
                        answer(data)
                        emit("released", size=len(data))
            elif fd == master and ev & select.POLLIN and is_open:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    continue
                cmdbuf += chunk
        if hup:
            time.sleep(0.002)

        while len(cmdbuf) >= 10:
            size = struct.unpack(">I", bytes(cmdbuf[2:6]))[0]
            if size < 10 or size > 65536:
                emit("garbage", size=size)
                cmdbuf.clear()
                break
            if len(cmdbuf) < size:
                break
            cmd = bytes(cmdbuf[:size])
            del cmdbuf[:size]
            cc = struct.unpack(">I", cmd[6:10])[0]
            emit("command", cc=cc, size=size)
            action = actions.pop(0) if actions else {"do": "pass"}
            do = action.get("do", "pass")
            if do == "replace":
                answer(bytes.fromhex(action["hex"]))
                emit("answered", size=len(action["hex"]) // 2)
                continue
            rsp = forward(cmd)
            if do == "hold":
                held = rsp
                emit("held", size=len(rsp))
            elif do == "truncate":
                answer(rsp[: action["keep"]])
                emit("truncated", size=len(rsp), keep=action["keep"])
            elif do == "append":
                answer(rsp + bytes.fromhex(action["hex"]))
                emit("answered", size=len(rsp))
            elif do == "split":
                answer(rsp[: action["at"]])
                time.sleep(action["ms"] / 1000)
                answer(rsp[action["at"] :])
                emit("answered", size=len(rsp))
            elif do == "delay":
                time.sleep(action["ms"] / 1000)
                answer(rsp)
                emit("answered", size=len(rsp))
            else:
                answer(rsp)
                emit("answered", size=len(rsp))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
