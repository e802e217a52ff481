// Child-process entry of `verdict bench` (forked with `--import tsx`): runs one node — a real
// coordinator (on LevelDB, or as the one member of a coordinator group on etcd), a real participant with no-op hooks, or an echo node of the transport ceiling —
// and reports its CPU, peak RSS and log counters (and, when sampled, its mean RSS since the last
// sample) to the parent over the IPC channel. It exits when told to stop, and at once if the
// parent goes away.

import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { pino } from 'pino';
import { clientTlsFromDir, serverTlsFilesIn } from '../common/throwaway-tls.js';
import { CoordinatorGroupMember } from '../cluster/coordinator-group-member.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { Participant } from '../participant/participant.js';
import type { ParticipantHooks } from '../participant/participant-options.js';
import { Vote } from '../protocol/types.js';
import { LockMode } from '../participant/lock-manager.js';
import { HOT_KEY_PREFIX } from './bench-options.js';
import { BenchRole, type BenchChildMessage, type BenchLogCounters, type BenchNodeReport, type BenchNodeSpec, type BenchParentMessage } from './bench-ipc.js';
import { EchoCoordinator, EchoParticipant } from './ceiling.js';
import { RssMeter } from './rss-meter.js';

/** A running node, whatever its role. */
interface BenchNode {
  readonly address: string;
  /** Cumulative log counters (zero for echo nodes). */
  log(): BenchLogCounters;
  /** Cumulative frames and messages written on sessions (coordinators). */
  frames(): { framesOut: number; messagesOut: number };
  close(): Promise<void>;
}

const HOT_PREFIX = Buffer.from(HOT_KEY_PREFIX);
const SEMICOLON = 0x3b;

/**
 * The resource manager with nothing to do but its lock: every prepare locks one key exclusively
 * (the one a `hot/<n>;` payload names, else a key of its own) and votes YES, or NO on a conflict;
 * commit and abort have nothing to write. The lock rides the PREPARED record and is released
 * once the outcome is written, as for any application.
 */
const LOCKING_HOOKS: ParticipantHooks = {
  prepare: async (txId, payload, { lock }) => {
    let hot = payload.length > HOT_PREFIX.length;
    for (let i = 0; hot && i < HOT_PREFIX.length; i++) hot = payload[i] === HOT_PREFIX[i];
    const end = hot ? payload.indexOf(SEMICOLON) : -1;
    await lock(hot && end > 0 ? Buffer.from(payload.subarray(0, end)).toString('latin1') : `tx/${txId}`, LockMode.EXCLUSIVE);
    return Vote.YES;
  },
  commit: () => undefined,
  abort: () => undefined,
};

/** The hooks of before the lock API: vote YES, take nothing (the `none` keys variant). */
const LOCK_FREE_HOOKS: ParticipantHooks = { prepare: () => Vote.YES, commit: () => undefined, abort: () => undefined };

const NO_LOG: BenchLogCounters = { batches: 0, syncedBatches: 0, writes: 0 };
const NO_FRAMES = { framesOut: 0, messagesOut: 0 };

function send(message: BenchChildMessage): void {
  process.send?.(message);
}

/** Sends a last message, then exits once it has left (an exit right away could drop it). */
function sendAndExit(message: BenchChildMessage, code: number): void {
  const exit = (): never => process.exit(code);
  if (process.send) process.send(message, undefined, undefined, exit);
  else exit();
}

async function startNode(spec: BenchNodeSpec): Promise<BenchNode> {
  // Warnings and errors still reach stderr; a benchmark must not pay for info logs.
  const logger = pino({ name: `bench-${spec.name}`, level: process.env['VERDICT_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
  const fail = (e: Error): void => {
    sendAndExit({ type: 'failed', message: `${spec.role} ${spec.name}: ${e.message}` }, 1);
  };
  switch (spec.role) {
    case BenchRole.COORDINATOR: {
      const c = await Coordinator.start({
        listen: '127.0.0.1:0',
        dataDir: required(spec.dataDir, 'dataDir'),
        groupCommit: spec.optimized ?? true,
        frameBatching: spec.optimized ?? true,
        logger,
        ...(spec.tlsDir ? { tls: serverTlsFilesIn(spec.tlsDir) } : {}),
      });
      c.on('error', fail);
      return {
        address: c.address,
        log: () => c.stats.log,
        frames: () => ({ framesOut: c.stats.sessions.framesOut, messagesOut: c.stats.sessions.messagesOut }),
        close: () => c.close(),
      };
    }
    case BenchRole.GROUP_MEMBER: {
      // A child of its own, so that the warning every member logs when it gives up its lease at
      // close can be silenced then: the bench closing its member is no news.
      const memberLogger = logger.child({});
      const m = await CoordinatorGroupMember.start({
        etcd: spec.etcd ?? [],
        nodeId: spec.name,
        advertise: required(spec.advertise, 'advertise'),
        etcdPrefix: required(spec.etcdPrefix, 'etcdPrefix'),
        coordinator: { frameBatching: spec.optimized ?? true },
        logger: memberLogger,
        // The same PKI and files as the LevelDB coordinator: the configurations differ by their log only.
        ...(spec.tlsDir ? { tls: serverTlsFilesIn(spec.tlsDir) } : {}),
      });
      // The member's only member: it leads once its first term has started (the parent's start
      // timeout bounds the wait). A term that ends mid-run shows as failed calls in the report.
      if (m.state !== 'leading') await once(m, 'leading');
      m.on('following', (why) => logger.warn({ why }, 'the bench group member stopped leading'));
      return {
        address: m.address,
        log: () => m.coordinator?.stats.log ?? NO_LOG,
        frames: () => {
          const sessions = m.coordinator?.stats.sessions;
          return sessions ? { framesOut: sessions.framesOut, messagesOut: sessions.messagesOut } : NO_FRAMES;
        },
        close: () => {
          memberLogger.level = 'error';
          return m.close();
        },
      };
    }
    case BenchRole.PARTICIPANT: {
      const p = await Participant.start({
        name: spec.name,
        coordinator: required(spec.coordinator, 'coordinator'),
        dataDir: required(spec.dataDir, 'dataDir'),
        hooks: spec.locks === false ? LOCK_FREE_HOOKS : LOCKING_HOOKS,
        groupCommit: spec.optimized ?? true,
        frameBatching: spec.optimized ?? true,
        logger,
        ...(spec.tlsDir ? { tls: clientTlsFromDir(spec.tlsDir, 'participant', spec.name) } : {}),
      });
      p.on('error', fail);
      await p.ready();
      return { address: '', log: () => ({ ...p.logStats }), frames: () => NO_FRAMES, close: () => p.close() };
    }
    case BenchRole.ECHO_COORDINATOR: {
      const e = await EchoCoordinator.start('127.0.0.1:0');
      return {
        address: e.address,
        log: () => NO_LOG,
        frames: () => ({ framesOut: e.stats.framesOut, messagesOut: e.stats.messagesOut }),
        close: () => e.close(),
      };
    }
    case BenchRole.ECHO_PARTICIPANT: {
      const e = await EchoParticipant.start(spec.name, required(spec.coordinator, 'coordinator'));
      return { address: '', log: () => NO_LOG, frames: () => NO_FRAMES, close: async () => e.close() };
    }
  }
}

/** Profiles this process's main thread with the V8 sampling profiler until `stop`. */
class WindowProfiler {
  readonly #session = new Session();

  static async start(): Promise<WindowProfiler> {
    const p = new WindowProfiler();
    p.#session.connect();
    await p.#session.post('Profiler.enable');
    await p.#session.post('Profiler.start');
    return p;
  }

  /** Stops profiling and writes the profile to `file`. */
  async stop(file: string): Promise<void> {
    const { profile } = await this.#session.post('Profiler.stop');
    this.#session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
  }
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new Error(`the bench parent sent no ${what}`);
  return value;
}

function main(): void {
  if (!process.send) {
    process.stderr.write('bench-node is started by `verdict bench` (child_process.fork), not by hand\n');
    process.exit(2);
  }
  // Without the parent there is nobody to report to: do not linger.
  process.on('disconnect', () => process.exit(1));

  let node: BenchNode | undefined;
  let spec: BenchNodeSpec | undefined;
  let mark = { at: 0, cpu: process.cpuUsage(), log: NO_LOG, frames: NO_FRAMES };
  let profiler: Promise<WindowProfiler> | undefined;
  let rss: RssMeter | undefined;

  process.on('message', (message: BenchParentMessage) => {
    switch (message.type) {
      case 'init':
        spec = message.spec;
        startNode(spec).then(
          (n) => {
            node = n;
            send({ type: 'ready', address: n.address });
          },
          (e: unknown) => {
            sendAndExit({ type: 'failed', message: `${message.spec.role} ${message.spec.name} did not start: ${(e as Error)?.message ?? String(e)}` }, 1);
          },
        );
        return;
      case 'mark':
        if (spec?.cpuProfile) profiler = WindowProfiler.start();
        if (node) mark = { at: performance.now(), cpu: process.cpuUsage(), log: { ...node.log() }, frames: node.frames() };
        rss?.stop();
        rss = new RssMeter();
        send({ type: 'marked' });
        return;
      case 'report': {
        if (!node || !spec) return send({ type: 'failed', message: 'report before the node started' });
        // Measured before the profile is serialized, which is not part of the window.
        const cpu = process.cpuUsage(mark.cpu);
        const log = node.log();
        const frames = node.frames();
        const report: BenchNodeReport = {
          role: spec.role,
          name: spec.name,
          windowMs: performance.now() - mark.at,
          cpuUs: cpu.user + cpu.system,
          maxRssKb: process.resourceUsage().maxRSS,
          log: {
            batches: log.batches - mark.log.batches,
            syncedBatches: log.syncedBatches - mark.log.syncedBatches,
            writes: log.writes - mark.log.writes,
          },
          framesOut: frames.framesOut - mark.frames.framesOut,
          messagesOut: frames.messagesOut - mark.frames.messagesOut,
        };
        const file = spec.cpuProfile;
        const profiled = profiler && file ? profiler.then((p) => p.stop(file)) : Promise.resolve();
        profiler = undefined;
        profiled.then(
          () => send({ type: 'report', report }),
          (e: unknown) => send({ type: 'failed', message: `${spec?.name ?? '?'}: cannot write the CPU profile: ${(e as Error)?.message ?? String(e)}` }),
        );
        return;
      }
      case 'sample':
        send({ type: 'sampled', rssKb: rss ? rss.take() : process.memoryUsage.rss() / 1024 });
        return;
      case 'stop':
        // A clean close (then exit), as a real deployment would shut down.
        void (node?.close() ?? Promise.resolve())
          .catch(() => undefined)
          .then(() => sendAndExit({ type: 'stopped' }, 0));
        return;
    }
  });
  send({ type: 'booted' });
}

main();
