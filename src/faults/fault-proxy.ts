// A TCP proxy that injects network faults into one link (a participant's session to the
// coordinator): it listens on 127.0.0.1:0 and forwards every connection to the target, passing,
// delaying, holding (blackhole) or dropping the bytes of either direction, and can reset every
// connection with an RST. gRPC runs over HTTP/2, so bytes cannot be dropped one by one without
// corrupting the stream: `drop` discards everything for a while and resets, at heal, every
// connection that lost bytes (as TCP would give up on them); `blackhole` holds the bytes and
// delivers them at heal, as TCP retransmission would after a partition shorter than its timeouts.

import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Which way bytes go: `up` from the client (participant) to the target (coordinator), `down` back. */
export type ProxyDirection = 'up' | 'down' | 'both';

/** What a direction of the link does with its bytes. */
export type LinkMode =
  | { readonly kind: 'pass' }
  /** Every chunk is delivered `ms` later (order kept). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Bytes are held, not delivered, until the mode changes (then they go, in order). */
  | { readonly kind: 'blackhole' }
  /** Bytes are discarded; a connection that lost bytes is reset when the mode changes. */
  | { readonly kind: 'drop' };

const PASS: LinkMode = { kind: 'pass' };

/** Counters of a proxy. */
export interface FaultProxyStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
  bytesDropped: number;
  resets: number;
}

interface Pipe {
  readonly from: Socket;
  readonly to: Socket;
  /** Bytes held (blackhole) or scheduled (delay), in order. */
  readonly queue: Buffer[];
  /** When the last delayed chunk is due: later chunks never overtake it. */
  lastDueAt: number;
  timers: Set<NodeJS.Timeout>;
  lostBytes: boolean;
}

interface Connection {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly up: Pipe;
  readonly down: Pipe;
}

/** Options of `FaultProxy.start`. */
export interface FaultProxyOptions {
  /** `host:port` every connection is forwarded to. */
  readonly target: string;
  /** A label for reports. */
  readonly name?: string;
}

/** A fault-injecting TCP proxy in front of one target. */
export class FaultProxy {
  readonly name: string;
  readonly target: string;
  readonly stats: FaultProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0, resets: 0 };
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  #up: LinkMode = PASS;
  #down: LinkMode = PASS;
  #address = '';
  #closed = false;

  private constructor(options: FaultProxyOptions) {
    this.name = options.name ?? options.target;
    this.target = options.target;
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Starts a proxy on 127.0.0.1 on a port the system picks. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => {
        proxy.#server.off('error', reject);
        resolve();
      });
    });
    const address = proxy.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
    proxy.#address = `127.0.0.1:${address.port}`;
    return proxy;
  }

  /** The `host:port` clients dial instead of the target. */
  get address(): string {
    return this.#address;
  }

  /** The current mode of each direction. */
  get mode(): { readonly up: LinkMode; readonly down: LinkMode } {
    return { up: this.#up, down: this.#down };
  }

  /** Live connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Sets the mode of one direction or both; held bytes are released and lossy connections reset. */
  set(mode: LinkMode, direction: ProxyDirection = 'both'): void {
    if (direction !== 'down') this.#up = mode;
    if (direction !== 'up') this.#down = mode;
    for (const c of [...this.#connections]) {
      if ((c.up.lostBytes && this.#up.kind !== 'drop') || (c.down.lostBytes && this.#down.kind !== 'drop')) {
        // The byte stream has a hole: a real TCP connection would have timed out and reset.
        this.#reset(c);
        continue;
      }
      this.#flush(c.up, this.#up);
      this.#flush(c.down, this.#down);
    }
  }

  /** Back to passing everything both ways. */
  heal(): void {
    this.set(PASS, 'both');
  }

  /** Destroys every live connection with an RST; clients see the connection reset. */
  resetAll(): number {
    const n = this.#connections.size;
    for (const c of [...this.#connections]) this.#reset(c);
    return n;
  }

  /** Stops listening and destroys every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.#connections]) this.#destroy(c);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#closed) {
      client.destroy();
      return;
    }
    const [host, port] = splitAddress(this.target);
    const upstream = createConnection({ host, port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pipe = (from: Socket, to: Socket): Pipe => ({ from, to, queue: [], lastDueAt: 0, timers: new Set(), lostBytes: false });
    const c: Connection = { client, upstream, up: pipe(client, upstream), down: pipe(upstream, client) };
    this.#connections.add(c);
    this.stats.connections++;
    client.on('data', (chunk: Buffer) => {
      this.stats.bytesUp += chunk.length;
      this.#forward(c.up, chunk, this.#up);
    });
    upstream.on('data', (chunk: Buffer) => {
      this.stats.bytesDown += chunk.length;
      this.#forward(c.down, chunk, this.#down);
    });
    const end = (): void => this.#destroy(c);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  }

  #forward(pipe: Pipe, chunk: Buffer, mode: LinkMode): void {
    switch (mode.kind) {
      case 'pass':
        if (pipe.queue.length > 0 || pipe.timers.size > 0) this.#schedule(pipe, chunk, 0);
        else pipe.to.write(chunk);
        return;
      case 'delay':
        this.#schedule(pipe, chunk, mode.ms);
        return;
      case 'blackhole':
        pipe.queue.push(chunk);
        return;
      case 'drop':
        pipe.lostBytes = true;
        this.stats.bytesDropped += chunk.length;
        return;
    }
  }

  /** Delivers `chunk` after `ms`, never before a chunk scheduled earlier. */
  #schedule(pipe: Pipe, chunk: Buffer, ms: number): void {
    const dueAt = Math.max(Date.now() + ms, pipe.lastDueAt);
    pipe.lastDueAt = dueAt;
    const timer = setTimeout(() => {
      pipe.timers.delete(timer);
      if (!pipe.to.destroyed) pipe.to.write(chunk);
    }, dueAt - Date.now());
    pipe.timers.add(timer);
  }

  /** Releases held bytes under the new mode. */
  #flush(pipe: Pipe, mode: LinkMode): void {
    if (mode.kind === 'blackhole' || pipe.queue.length === 0) return;
    const held = pipe.queue.splice(0);
    for (const chunk of held) this.#forward(pipe, chunk, mode);
  }

  #reset(c: Connection): void {
    this.stats.resets++;
    for (const s of [c.client, c.upstream]) {
      if (!s.destroyed) {
        // An RST, not a FIN: the peer sees ECONNRESET, as after a crash or a middlebox reset.
        if (typeof s.resetAndDestroy === 'function' && s.readyState !== 'opening') s.resetAndDestroy();
        else s.destroy();
      }
    }
    this.#destroy(c);
  }

  #destroy(c: Connection): void {
    if (!this.#connections.delete(c)) return;
    for (const pipe of [c.up, c.down]) {
      for (const t of pipe.timers) clearTimeout(t);
      pipe.timers.clear();
      pipe.queue.length = 0;
    }
    c.client.destroy();
    c.upstream.destroy();
  }
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
