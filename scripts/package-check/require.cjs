// A CommonJS consumer: `require('verdict')` loads the ESM package (Node ≥ 20.19 requires ES
// modules without top-level await). Prints what it found as one JSON line.
const verdict = require('verdict');
const testing = require('verdict/testing');

console.log(
  JSON.stringify({
    root: ['Coordinator', 'Participant', 'VerdictClient', 'VerdictError'].filter((name) => typeof verdict[name] === 'function'),
    errorCode: verdict.ErrorCode.TX_ABORTED,
    testing: ['runChaos', 'assertNoViolations', 'armFailpoint'].filter((name) => typeof testing[name] === 'function'),
  }),
);
