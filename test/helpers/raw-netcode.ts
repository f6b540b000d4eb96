/**
 * A netcode 1.02 client written for the tests on node:crypto and node:dgram,
 * apart from tsage's own: it proves that a client of another implementation
 * connects to a tsage secure listener, and lets a test send anything inside
 * valid encryption (an authenticated peer that misbehaves).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { ExecutionContext } from 'ava';
import { openPacket, type PublicToken, readPublicToken, requestPacket, sealPacket } from './netcode.js';

export class RawNetcodeClient {
  private sequence = 0n;
  /** netcode's client state, as the standard names it. */
  state: 'sending connection request' | 'sending connection response' | 'connected' | 'disconnected' =
    'sending connection request';
  private challenge: Buffer | undefined;
  /** Payloads received from the server, in order. */
  readonly payloads: Buffer[] = [];
  /** The slot the server's keep-alive gave. */
  clientIndex = -1;
  private timer: NodeJS.Timeout | undefined;
  readonly pub: PublicToken;
  private readonly host: string;
  private readonly port: number;

  private constructor(
    private readonly socket: Socket,
    token: Uint8Array,
  ) {
    this.pub = readPublicToken(token);
    const a = this.pub.serverAddresses[0]!;
    const i = a.lastIndexOf(':');
    this.host = a.slice(0, i);
    this.port = Number(a.slice(i + 1));
    socket.on('message', (d) => this.receive(d));
  }

  /** A client with a socket on `host` (any of 127.0.0.0/8; default 127.0.0.1), closed when the test ends. */
  static async open(t: ExecutionContext, token: Uint8Array, host = '127.0.0.1'): Promise<RawNetcodeClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, host, r));
    const c = new RawNetcodeClient(socket, token);
    t.teardown(() => c.close());
    return c;
  }

  /** The port it sends from. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** The address it sends from, `ip:port`, as the server's `msg.sender` holds it. */
  get localAddress(): string {
    const a = this.socket.address();
    return `${a.address}:${a.port}`;
  }

  /** Starts connecting: the request, then the response, at 10 Hz; keep-alives once connected. */
  start(): void {
    this.step();
    this.timer = setInterval(() => this.step(), 100);
  }

  private step(): void {
    if (this.state === 'sending connection request') this.raw(requestPacket(this.pub));
    else if (this.state === 'sending connection response') this.send(3, this.challenge!);
    else if (this.state === 'connected') this.send(4, Buffer.alloc(8));
  }

  /** Sends an encrypted packet of `type` with the next sequence. */
  send(type: number, data: Uint8Array): void {
    this.raw(sealPacket(this.pub.clientToServerKey, this.pub.protocolId, type, this.sequence++, data));
  }

  /** Sends a payload packet. */
  sendPayload(data: Uint8Array): void {
    this.send(5, data);
  }

  /** Sends bytes as they are. */
  raw(d: Uint8Array): void {
    this.socket.send(d, this.port, this.host);
  }

  private receive(d: Buffer): void {
    let p: ReturnType<typeof openPacket>;
    try {
      p = openPacket(this.pub.serverToClientKey, this.pub.protocolId, d);
    } catch {
      return;
    }
    if (p.type === 2 && this.state === 'sending connection request') {
      this.challenge = p.data;
      this.state = 'sending connection response';
      this.step();
    } else if (p.type === 4 && this.state !== 'disconnected') {
      if (this.state === 'sending connection response') this.clientIndex = p.data.readUInt32LE(0);
      this.state = 'connected';
    } else if (p.type === 5 && this.state === 'connected') {
      this.payloads.push(p.data);
    } else if (p.type === 6 || p.type === 1) {
      this.state = 'disconnected';
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    try {
      this.socket.close();
    } catch {
      // closed already
    }
  }
}
