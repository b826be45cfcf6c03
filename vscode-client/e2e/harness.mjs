// Process plumbing for the e2e test: a private run folder, code-server in its own process
// group, Chromium through playwright-core, and a cleanup that ends everything we started.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(new URL(import.meta.url).pathname);
export const client = path.resolve(here, '..');
export const repo = path.resolve(client, '..');
const codeServer = path.join(here, 'node_modules', '.bin', 'code-server');

/** A fresh folder holding HOME, XDG dirs, TMPDIR, VS Code's data and the workspace. */
export function makeRun() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ghostline-e2e-'));
  const dirs = Object.fromEntries(['home', 'config', 'data', 'cache', 'tmp', 'ud/User', 'ext']
    .map((d) => [d, path.join(root, d)]));
  Object.values(dirs).forEach((d) => fs.mkdirSync(d, { recursive: true }));
  const ws = path.join(root, 'ws');
  fs.cpSync(path.join(here, 'fixture'), ws, { recursive: true });
  const env = {
    ...process.env, HOME: dirs.home, XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache, TMPDIR: dirs.tmp, GHOSTLINE_E2E_RUN: root,
  };
  return { root, ws, ud: path.join(root, 'ud'), ext: dirs.ext, env };
}

export function writeSettings(run, extra) {
  const settings = {
    'files.autoSave': 'off', 'files.hotExit': 'off', 'chat.disableAIFeatures': true,
    'telemetry.telemetryLevel': 'off', 'workbench.startupEditor': 'none',
    'editor.inlineSuggest.enabled': true, 'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false, 'workbench.enableExperiments': false,
    'workbench.tips.enabled': false, 'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false, ...extra,
  };
  fs.writeFileSync(path.join(run.ud, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Installs the .vsix, then starts code-server on 127.0.0.1 with auth none. */
export async function startCodeServer(run, vsix) {
  const config = path.join(run.root, 'config.yaml');
  const port = await freePort();
  fs.writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const common = ['--config', config, '--user-data-dir', run.ud, '--extensions-dir', run.ext];
  execFileSync(codeServer, [...common, '--install-extension', vsix], { env: run.env, stdio: 'pipe' });
  const log = fs.openSync(path.join(run.root, 'code-server.log'), 'a');
  const child = spawn(codeServer, [...common, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', run.ws], { env: run.env, detached: true, stdio: ['ignore', log, log] });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 60_000, 'code-server /healthz');
  return { child, url };
}

export async function launchBrowser(run) {
  return chromium.launch({
    env: run.env,
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-dev-shm-usage',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Polls `check` until it returns a truthy value; errors count as "not yet". */
export async function waitFor(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch { /* not ready yet */ }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Ends code-server's process group, then any stray process that carries this run's marker. */
export async function cleanup(run, server, browser) {
  await browser?.close().catch(() => {});
  if (server) {
    try { process.kill(-server.child.pid, 'SIGTERM'); } catch { /* already gone */ }
    await waitFor(() => strays(run.root).length === 0, 5000, 'processes to exit').catch(() => {});
  }
  for (const pid of strays(run.root)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/** Processes carrying this run's marker in their environment: everything it started. */
export function processes(root) {
  const marker = `GHOSTLINE_E2E_RUN=${root}\0`;
  const read = (pid, what) => { try { return fs.readFileSync(`/proc/${pid}/${what}`, 'latin1'); } catch { return ''; } };
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((pid) => read(pid, 'environ').includes(marker))
    .map((pid) => ({ pid: Number(pid), cmdline: read(pid, 'cmdline').replace(/\0/g, ' ') }));
}

const strays = (root) => processes(root).map((p) => p.pid);
