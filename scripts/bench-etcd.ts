// What a coordinator group on etcd costs next to a LevelDB coordinator, in the same run: tx/s and
// p50/p99 latency of 3-participant transactions at a fixed number in flight, and etcd
// transactions (decision-log batches) per committed tx; then failover time over repeated SIGKILLs
// of the leader of a 3-member group of real `verdict coordinator --etcd` processes (p50, worst).
//
//   npm run bench:etcd -- [--duration S] [--inflight N] [--participants P] [--kills K] [--lease-ttl 1s]
//
// Everything runs on this machine: a throwaway 3-member etcd cluster (as in the tests), the
// coordinators and participants in this process for the throughput part. Not a test: no pass/fail.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Etcd3 } from 'etcd3';
import { VerdictClient } from '../src/client/index.js';
import { CoordinatorGroupMember } from '../src/cluster/index.js';
import { Coordinator } from '../src/coordinator/index.js';
import { fixedPort } from '../src/faults/process-cluster.js';
import { Participant } from '../src/participant/index.js';
import { EtcdCluster } from '../src/faults/etcd-cluster.js';
import { MemberProcess, readLeader } from '../src/faults/group-member-process.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    inflight: { type: 'string', default: '64' },
    participants: { type: 'string', default: '3' },
    kills: { type: 'string', default: '5' },
    'lease-ttl': { type: 'string', default: '1s' },
  },
});
const DURATION_MS = Number(values.duration) * 1000;
const WARMUP_MS = Number(values.warmup) * 1000;
const IN_FLIGHT = Number(values.inflight);
const PARTICIPANTS = Number(values.participants);
const KILLS = Number(values.kills);
const LEASE_TTL = values['lease-ttl'] ?? '1s';
const POLL_MS = 20;

const logger = pino({ level: process.env.VERDICT_LOG_LEVEL ?? 'silent' });

interface Result {
  readonly name: string;
  readonly txs: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  readonly batchesPerTx: number;
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;

/** Drives `address` with IN_FLIGHT workers of P-branch transactions; measures after the warm-up. */
async function drive(name: string, address: string, dir: string, batches: () => number): Promise<Result> {
  const names = Array.from({ length: PARTICIPANTS }, (_, i) => `${name}-p${i + 1}`);
  const participants = await Promise.all(
    names.map((n) => Participant.start({ name: n, coordinator: address, dataDir: join(dir, n), hooks: { prepare: () => 'yes', commit: () => undefined, abort: () => undefined }, logger })),
  );
  await Promise.all(participants.map((p) => p.ready()));
  const client = new VerdictClient(address, { callTimeoutMs: 30_000 });
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;
  let txs = 0;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const t0 = performance.now();
      await client.transact(names.map((participant) => ({ participant })), { timeoutMs: 10_000 });
      if (measuring) {
        latencies.push(performance.now() - t0);
        txs++;
      }
    }
  };
  const workers = Array.from({ length: IN_FLIGHT }, worker);
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const batches0 = batches();
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, DURATION_MS));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const batchesUsed = batches() - batches0;
  stop = true;
  await Promise.all(workers);
  client.close();
  await Promise.all(participants.map((p) => p.close()));
  latencies.sort((a, b) => a - b);
  return { name, txs, seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), batchesPerTx: batchesUsed / txs };
}

async function throughput(etcd: EtcdCluster, dir: string): Promise<Result[]> {
  const results: Result[] = [];
  const level = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir, 'level'), logger });
  try {
    results.push(await drive('leveldb', level.address, dir, () => level.stats.log.batches));
  } finally {
    await level.close();
  }
  const member = await CoordinatorGroupMember.start({ etcd: etcd.hosts, nodeId: 'bench', advertise: `127.0.0.1:${await fixedPort()}`, etcdPrefix: '/bench/', logger });
  try {
    const deadline = Date.now() + 30_000;
    while (member.state !== 'leading' && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
    if (member.state !== 'leading') throw new Error('the group member did not lead within 30 s');
    results.push(await drive('etcd', member.address, dir, () => member.coordinator?.stats.log.batches ?? 0));
  } finally {
    await member.close();
  }
  return results;
}

/** Whether `address` serves as leader now (answers a status query with anything but UNAVAILABLE). */
async function serves(address: string): Promise<boolean> {
  const client = new VerdictClient(address, { callTimeoutMs: 500 });
  try {
    await client.get('tx-1-999999999');
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code !== 'UNAVAILABLE' && code !== 'NOT_LEADER' && code !== 'OUTCOME_UNKNOWN';
  } finally {
    client.close();
  }
}

async function failovers(etcd: EtcdCluster, dir: string): Promise<number[]> {
  const prefix = '/bench-failover/';
  const members: MemberProcess[] = [];
  for (let i = 0; i < 3; i++) members.push(new MemberProcess(dir, `f${i + 1}`, `127.0.0.1:${await fixedPort()}`, etcd.endpoints, prefix, LEASE_TTL));
  const client = new Etcd3({ hosts: etcd.hosts.map((h) => `http://${h}`) });
  const times: number[] = [];
  try {
    await Promise.all(members.map((m) => m.start()));
    const leaderServing = async (not?: MemberProcess): Promise<MemberProcess> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const value = await readLeader(client, prefix);
        const leader = members.find((m) => m.nodeId === value?.nodeId);
        if (leader && leader !== not && leader.alive && (await serves(leader.advertise))) return leader;
        if (Date.now() > deadline) throw new Error('no leader served within 60 s');
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };
    let leader = await leaderServing();
    for (let k = 0; k < KILLS; k++) {
      const killedAt = performance.now();
      await leader.kill();
      const next = await leaderServing(leader);
      times.push(performance.now() - killedAt);
      await leader.start();
      leader = next;
    }
  } finally {
    await Promise.all(members.map((m) => (m.alive ? m.kill().catch(() => undefined) : undefined)));
    client.close();
  }
  return times;
}

const dir = mkdtempSync(join(tmpdir(), 'verdict-bench-etcd-'));
const etcd = await EtcdCluster.start();
try {
  console.log(`P=${PARTICIPANTS}, ${IN_FLIGHT} in flight, ${DURATION_MS / 1000} s after ${WARMUP_MS / 1000} s of warm-up; etcd: 3 members on this machine`);
  for (const r of await throughput(etcd, dir)) {
    console.log(
      `${r.name.padEnd(8)} ${(r.txs / r.seconds).toFixed(0).padStart(6)} tx/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  log batches (etcd transactions for etcd) per committed tx ${r.batchesPerTx.toFixed(3)}`,
    );
  }
  if (KILLS > 0) {
    const times = (await failovers(etcd, dir)).sort((a, b) => a - b);
    console.log(`failover (SIGKILL of the leader → another member serves), lease ${LEASE_TTL}, ${times.length} kills: p50 ${percentile(times, 0.5).toFixed(0)} ms, worst ${times[times.length - 1]?.toFixed(0)} ms`);
  }
} finally {
  await etcd.stop();
  rmSync(dir, { recursive: true, force: true });
}
