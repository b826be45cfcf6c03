import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { pythonCandidates, resolvePython, serverSettingNames, serverSettings } from '../src/config';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const properties: Record<string, { default?: unknown; description?: string }> =
  manifest.contributes.configuration.properties;

test('server settings are every ghostline.* setting except the client-only ones', () => {
  const names = serverSettingNames(properties);
  assert.ok(names.includes('maxTokens') && names.includes('modelPath') && names.includes('enabled'));
  assert.ok(!names.includes('pythonPath') && !names.includes('trace.server'));
  assert.deepEqual(serverSettingNames({ 'ghostline.a': {}, 'other.b': {}, 'ghostline.pythonPath': {} }), ['a']);
});

// That package.json matches the Python server's settings (names, defaults, limits) is
// checked once, in tests/test_settings.py, against lsp_server/settings.py itself.

test('every setting is documented and defaulted', () => {
  for (const [key, property] of Object.entries(properties)) {
    assert.ok(property.description, `${key} has no description`);
    assert.ok('default' in property, `${key} has no default`);
  }
});

test('serverSettings reads each name and drops undefined values', () => {
  const values: Record<string, unknown> = { maxTokens: 12, enabled: false };
  assert.deepEqual(serverSettings(['maxTokens', 'enabled', 'device'], (n) => values[n]), { maxTokens: 12, enabled: false });
});

test('python: the configured interpreter wins', () => {
  assert.equal(resolvePython(' /opt/py/bin/python ', ['/repo/.venv/bin/python'], () => true, 'linux'), '/opt/py/bin/python');
});

test('python: else the first .venv that exists, else python3', () => {
  const candidates = pythonCandidates('/repo/vscode-client', ['/ws1', '/ws2'], 'linux');
  assert.deepEqual(candidates, ['/repo/.venv/bin/python', '/ws1/.venv/bin/python', '/ws2/.venv/bin/python']);
  assert.equal(resolvePython('', candidates, (f) => f.startsWith('/ws2'), 'linux'), '/ws2/.venv/bin/python');
  assert.equal(resolvePython(undefined, candidates, () => false, 'linux'), 'python3');
  assert.equal(resolvePython(undefined, [], () => false, 'win32'), 'python');
});
