import { BlockList } from 'node:net';
import type { ParsedIp } from '../net/ip.js';
import { CLIENT_SUBJECT_PREFIX } from '../auth/store/types.js';
import { WS_CLOSE, type CloseReason } from '../proxy/ws-session.js';
import type { LiveSocket } from '../auth/live-sockets.js';
import type { BlockSet } from './blocks.js';
import type { Block } from './model.js';

/** Who an open websocket belongs to, as the pipeline knew when it opened. */
export interface SocketParty {
  readonly address: ParsedIp;
  readonly route: string;
  /** The principal's subject (a user name, or `client:<name>`), when the route authenticated. */
  readonly subject?: string | undefined;
}

/**
 * Open websockets and whom they belong to: a block learnt here or on any instance (BlockSet
 * hears of both) closes, at once, every socket of the blocked address, network, user, API
 * client or route, with the same code a new request would be refused with. The revocation's
 * LiveSockets does the same for tokens; this one needs no auth service, as ip and route blocks
 * apply on routes without authentication.
 */
export class ContainedSockets {
  private readonly sockets = new Map<LiveSocket, SocketParty>();

  constructor(private readonly blocks: BlockSet) {
    blocks.onAdded((b) => this.closeBlocked(b));
  }

  track(socket: LiveSocket, party: SocketParty): void {
    this.sockets.set(socket, party);
    socket.onGone(() => this.sockets.delete(socket));
    // A block learnt while the upgrade's steps awaited (a ticket, a token check) came too late
    // for them: the socket closes as soon as it opens.
    const b = this.blocks.address(party.address) ?? this.blocks.route(party.route) ?? (party.subject !== undefined ? this.blocks.subject(party.subject) : undefined);
    if (b) socket.close(closeReason(b));
  }

  get size(): number {
    return this.sockets.size;
  }

  private closeBlocked(b: Block): void {
    if (this.sockets.size === 0) return;
    const hit = matcher(b);
    for (const [socket, party] of this.sockets) if (hit(party)) socket.close(closeReason(b));
  }
}

function closeReason(b: Block): CloseReason {
  if (b.kind === 'route') return WS_CLOSE.maintenance;
  return b.kind === 'user' || b.kind === 'client' ? WS_CLOSE.accountBlocked : WS_CLOSE.blocked;
}

function matcher(b: Block): (p: SocketParty) => boolean {
  switch (b.kind) {
    case 'ip':
      return (p) => p.address.address === b.target;
    case 'cidr': {
      const [address = '', prefix = '0'] = b.target.split('/');
      const list = new BlockList();
      list.addSubnet(address, Number(prefix), address.includes(':') ? 'ipv6' : 'ipv4');
      return (p) => list.check(p.address.address, p.address.family);
    }
    case 'user':
      return (p) => p.subject === b.target;
    case 'client':
      return (p) => p.subject === `${CLIENT_SUBJECT_PREFIX}${b.target}`;
    case 'route':
      return (p) => p.route === b.target;
  }
}
