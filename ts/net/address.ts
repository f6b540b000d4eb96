/**
 * Addresses for both network transports: resolving a host name, writing
 * `ip:port` the one way peers are named (`[ip]:port` for IPv6), and choosing
 * where a client binds.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Resolves a host name to an IP literal (an IP literal is returned as it is). */
export async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  const { address } = await lookup(host);
  return address;
}

/** `ip:port`, or `[ip]:port` for IPv6: what `msg.sender` holds and `sendMessage` takes. */
export function formatAddr(ip: string, port: number | undefined): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Where a client binds: the loopback address when it connects to loopback, else any address of the family. */
export async function clientBindAddress(host: string): Promise<string> {
  const ip = await resolveHost(host);
  if (ip === '::1') return '::1';
  if (ip.startsWith('127.')) return '127.0.0.1';
  return ip.includes(':') ? '::' : '0.0.0.0';
}
