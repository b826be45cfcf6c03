import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeStatus, formatLatency, parseStatus } from '../src/status';

test('ready shows the model and the last latency', () => {
  const view = describeStatus({ state: 'ready', model: 'default', lastLatencyMs: 41.6 });
  assert.equal(view.text, '$(sparkle) ghostline (default) 42 ms');
  assert.match(view.tooltip, /model: default/);
  assert.match(view.tooltip, /last completion: 42 ms/);
  assert.equal(view.error, false);
});

test('disabled reads as off; loading spins; errors carry their message', () => {
  assert.equal(describeStatus({ state: 'disabled', model: 'default', lastLatencyMs: 3 }).text,
    '$(circle-slash) ghostline (default) off');
  assert.equal(describeStatus({ state: 'loading', model: '', lastLatencyMs: null }).text, '$(loading~spin) ghostline');
  const error = describeStatus({ state: 'error', model: 'm', lastLatencyMs: null, message: 'no model at /x' });
  assert.equal(error.error, true);
  assert.match(error.tooltip, /no model at \/x/);
});

test('latency formats as ms, then seconds', () => {
  assert.equal(formatLatency(null), '');
  assert.equal(formatLatency(12.4), '12 ms');
  assert.equal(formatLatency(1520), '1.5 s');
});

test('a malformed notification becomes an error, not a crash', () => {
  assert.deepEqual(parseStatus({ state: 'ready', model: 'm', lastLatencyMs: 5 }),
    { state: 'ready', model: 'm', lastLatencyMs: 5, message: null });
  const bad = parseStatus({ state: 'exploded' });
  assert.equal(bad.state, 'error');
  assert.match(bad.message ?? '', /unexpected status/);
  assert.equal(parseStatus(undefined).state, 'error');
});
