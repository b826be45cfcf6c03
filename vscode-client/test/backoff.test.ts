import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../src/backoff';

function clock() {
  const c = { t: 0, now: () => c.t };
  return c;
}

test('delays double up to the cap, then the client gives up', () => {
  const c = clock();
  const b = new Backoff({ baseMs: 100, maxMs: 500, maxAttempts: 5, stableMs: 1000 }, c.now);
  const delays = [];
  for (let i = 0; i < 6; i++) {
    b.started();
    c.t += 10; // crashes right after starting
    delays.push(b.nextDelay());
  }
  assert.deepEqual(delays, [100, 200, 400, 500, 500, undefined]);
});

test('a server that stayed up long enough starts over at the base delay', () => {
  const c = clock();
  const b = new Backoff({ baseMs: 100, maxMs: 500, maxAttempts: 5, stableMs: 1000 }, c.now);
  b.started();
  assert.equal(b.nextDelay(), 100);
  b.started();
  assert.equal(b.nextDelay(), 200);
  b.started();
  c.t += 1000;
  assert.equal(b.nextDelay(), 100);
  assert.equal(b.restarts, 1);
});

test('a server that never came up keeps backing off', () => {
  const c = clock();
  const b = new Backoff({ baseMs: 100, maxMs: 500, maxAttempts: 5, stableMs: 1000 }, c.now);
  c.t += 5000;
  assert.equal(b.nextDelay(), 100);
  c.t += 5000;
  assert.equal(b.nextDelay(), 200);
});
