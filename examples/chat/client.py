#!/usr/bin/env python3
"""A chat client in plain Python 3 (socket and struct; no pysage, no tsage) for the
chat server on pysage's wire: npx tsx examples/chat/server.ts 8000 --wire=pysage --transport=tcp

    python3 examples/chat/client.py PORT NICK [--udp] [--expect=N] [--together=K] [LINE ...]

It says hello, says each line (once K are online), prints what the others say, and
leaves once it has heard N lines (or after 5 s). The messages are examples/chat/messages.ts, packed as
pysage packs them: the packet type (!B), then each property; 'p' is a length byte
and the bytes, 'S' an !i length and the bytes, 'B' one byte. Over TCP each message
is a frame: struct.pack('!L', len(message)) + message; over UDP it is a datagram.
"""
import select
import socket
import struct
import sys
import time

HELLO, JOINED, CHAT = 120, 121, 122  # packetType of HelloMessage, JoinedMessage, ChatMessage


def p(text):  # pysage's 'p': a length byte, then the bytes
    data = text.encode()
    return struct.pack('!B', len(data)) + data


def S(text):  # pysage's 'S': an !i length, then the bytes
    data = text.encode()
    return struct.pack('!i', len(data)) + data


def frame(msg):  # SelectTCPTransport's framing: struct.pack('!L', len(msg)) + msg
    return struct.pack('!L', len(msg)) + msg


def read_p(msg, at):
    n = msg[at]
    return msg[at + 1:at + 1 + n].decode(), at + 1 + n


def read_S(msg, at):
    (n,) = struct.unpack_from('!i', msg, at)
    return msg[at + 4:at + 4 + n].decode(), at + 4 + n


class Tcp:
    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.buf = b''

    def send(self, msg):
        self.sock.sendall(frame(msg))

    def receive(self):
        """Every whole frame that has arrived (any number per read)."""
        data = self.sock.recv(65536)
        if not data:
            raise EOFError('the server closed the connection')
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from('!L', self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(self.buf[4:4 + n])
            self.buf = self.buf[4 + n:]
        return out


class Udp:
    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(('127.0.0.1', port))

    def send(self, msg):
        self.sock.send(msg)

    def receive(self):
        return [self.sock.recv(65536)]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    flags = [a for a in sys.argv[1:] if a.startswith('--')]
    port, nick, lines = int(args[0]), args[1], args[2:]
    flag = lambda name: int(next((f.split('=')[1] for f in flags if f.startswith(name + '=')), 0))
    expect, together = flag('--expect'), flag('--together')
    link = Udp(port) if '--udp' in flags else Tcp(port)
    link.send(struct.pack('!B', HELLO) + p(nick))
    heard, seen, deadline, next_line = 0, 0, time.time() + 5, time.time() + 0.2
    while heard < expect or lines:
        if time.time() > deadline:
            break
        if lines and seen >= together and time.time() >= next_line:
            link.send(struct.pack('!B', CHAT) + p(nick) + S(lines.pop(0)))
            next_line = time.time() + 0.2
        ready, _, _ = select.select([link.sock], [], [], 0.05)
        for msg in link.receive() if ready else []:
            if msg[0] == JOINED:
                who, at = read_p(msg, 1)
                seen = max(seen, msg[at])
                print('%s sees %s join (%d online)' % (nick, who, msg[at]), flush=True)
            elif msg[0] == CHAT:
                who, at = read_p(msg, 1)
                text, _ = read_S(msg, at)
                print('%s heard <%s> %s' % (nick, who, text), flush=True)
                heard += 1
    link.sock.close()
    sys.exit(0 if heard >= expect else 1)


if __name__ == '__main__':
    main()
