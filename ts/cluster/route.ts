/**
 * Addresses: `'group@node'` and `'group@*'` resolved against the members to a
 * destination (throwing as a send to them must), and remembered until the
 * membership changes, so a run of sends to one address resolves it once.
 */
import { GroupDoesNotExist, InvalidOption } from '../errors.js';
import { MAIN_GROUP } from '../group/wire.js';
import { MAIN, type Members } from './members.js';
import { isToken, type Subjects } from './options.js';
import type { Destination, Outbox } from './send.js';
import { KIND_DIRECT, KIND_QUEUE } from './wire.js';

/** Addresses remembered with what they resolved to. */
const MAX_ROUTES = 4096;

/** What an address resolved to, while the members are as they were (`version`). */
interface Route {
  readonly dest: Destination;
  readonly version: number;
}

export class Router {
  private readonly routes = new Map<string, Route>();
  /** The last address resolved, checked before the map: a run of sends to one address. */
  private last: string | undefined;
  private lastRoute: Route | undefined;

  constructor(
    private readonly members: Members,
    private readonly outbox: Outbox,
    private readonly subjects: Subjects,
  ) {}

  /** The destination of an address; throws InvalidOption for a malformed one, GroupDoesNotExist for one not live. */
  resolve(address: string): Destination {
    // A run of sends to one address, the members unchanged: nothing else to look at.
    const last = this.lastRoute;
    if (address === this.last && last !== undefined && last.version === this.members.version)
      return last.dest;
    return this.resolveMiss(address);
  }

  private resolveMiss(address: string): Destination {
    const version = this.members.version;
    let r = address === this.last ? this.lastRoute : this.routes.get(address);
    if (r === undefined || r.version !== version) {
      r = { dest: this.lookUp(address), version };
      if (this.routes.size >= MAX_ROUTES) this.routes.clear();
      this.routes.set(address, r);
    }
    this.last = address;
    this.lastRoute = r;
    return r.dest;
  }

  private lookUp(address: string): Destination {
    const at = address.lastIndexOf('@');
    const group = address.slice(0, at);
    const node = address.slice(at + 1);
    const token = group === MAIN_GROUP ? MAIN : group;
    if (!isToken(token) || (node !== '*' && !isToken(node))) {
      throw new InvalidOption(
        `queueMessageToGroup: '${address}' is not 'group@node' or 'group@*' (names: letters, digits, '_' and '-')`,
      );
    }
    if (node === '*') {
      if (!this.members.hasGroupAnywhere(token)) {
        throw new GroupDoesNotExist(`no live node runs a group '${group}' (sending to '${address}')`);
      }
      return this.outbox.destination(this.subjects.queue(token), KIND_QUEUE, `${token}@*`, 0, undefined);
    }
    const g = this.members.group(node, token);
    if (g === undefined) {
      throw new GroupDoesNotExist(
        this.members.incarnation(node) === undefined
          ? `node '${node}' is not a live member of the cluster (sending to '${address}')`
          : `node '${node}' runs no group '${group}' (sending to '${address}')`,
      );
    }
    return this.outbox.destination(
      this.subjects.direct(node, token),
      KIND_DIRECT,
      `${token}@${node}`,
      g.inc,
      node,
    );
  }
}
