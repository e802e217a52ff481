// The generated protobuf code loads under tsx and keeps the wire contract the protos promise:
// enum numbers are part of the log format, so they must never shift.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Outcome, Vote } from '../../src/gen/verdict/v1/common.js';
import {
  CoordinatorRecord,
  CoordinatorRecordKind,
  ParticipantRecord,
  ParticipantRecordState,
} from '../../src/gen/verdict/v1/log.js';
import { ParticipantServiceClient, ParticipantServiceService, Prepare } from '../../src/gen/verdict/v1/participant.js';
import { TransactionServiceClient, TransactionServiceService } from '../../src/gen/verdict/v1/transaction.js';

describe('generated protobuf code', () => {
  it('keeps the enum numbers of common.proto', () => {
    assert.equal(Outcome.OUTCOME_UNSPECIFIED, 0);
    assert.equal(Outcome.OUTCOME_COMMITTED, 1);
    assert.equal(Outcome.OUTCOME_ABORTED, 2);
    assert.equal(Vote.VOTE_YES, 1);
    assert.equal(Vote.VOTE_NO, 2);
    assert.equal(Vote.VOTE_READ_ONLY, 3);
  });

  it('round-trips a CoordinatorRecord through the wire format', () => {
    const record = CoordinatorRecord.create({
      version: 1,
      txId: 'tx-7-0001',
      kind: CoordinatorRecordKind.COORDINATOR_RECORD_KIND_COMMIT,
      participants: ['inventory', 'payments'],
      outcome: Outcome.OUTCOME_COMMITTED,
      reason: '',
      // Beyond 2^32: int64 fields are plain numbers and must survive the trip.
      writtenUnixMs: 1_767_225_600_123,
    });
    const bytes = CoordinatorRecord.encode(record).finish();
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual(CoordinatorRecord.decode(bytes), record);
  });

  it('round-trips bytes fields as Buffers', () => {
    const record = ParticipantRecord.create({
      version: 1,
      txId: 'tx-7-0002',
      state: ParticipantRecordState.PARTICIPANT_RECORD_STATE_PREPARED,
      payload: Buffer.from([0, 1, 2, 255]),
      writtenUnixMs: 42,
    });
    const decoded = ParticipantRecord.decode(ParticipantRecord.encode(record).finish());
    assert.ok(Buffer.isBuffer(decoded.payload));
    assert.deepEqual(decoded, record);
  });

  it('decodes unset fields to proto3 defaults', () => {
    assert.deepEqual(Prepare.decode(new Uint8Array()), {
      txId: '',
      payload: Buffer.alloc(0),
      deadlineUnixMs: 0,
      onePhase: false,
    });
  });

  it('describes both gRPC services', () => {
    assert.equal(TransactionServiceService.commit.path, '/verdict.v1.TransactionService/Commit');
    assert.equal(ParticipantServiceService.session.requestStream, true);
    assert.equal(ParticipantServiceService.session.responseStream, true);
    assert.equal(typeof TransactionServiceClient, 'function');
    assert.equal(typeof ParticipantServiceClient, 'function');
  });
});
