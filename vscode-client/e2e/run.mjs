// End-to-end: the packaged extension in a real VS Code (code-server) in Chromium, talking
// to the real language server. Ghost text appears and Tab accepts it, and `ghostline stats`
// counts the accept from the server's local telemetry log; "Find Similar Code" lists a
// function's copy with its score. Screenshots go to e2e/screenshots/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, client, launchBrowser, makeRun, processes, repo, startCodeServer, waitFor, writeSettings } from './harness.mjs';
import { checkNotifications, command, openFile, step, waitForStatus } from './workbench.mjs';

const shots = process.env.E2E_SCREENSHOTS ?? path.join(client, 'e2e', 'screenshots');
const vsix = path.join(client, 'ghostline.vsix');
const venv = path.join(repo, '.venv', 'bin', 'python');
async function main(run, state) {
  // Any model path for development comes from E2E_MODEL_PATH; by default the shipped model.
  const model = process.env.E2E_MODEL_PATH ? { 'ghostline.modelPath': process.env.E2E_MODEL_PATH } : {};
  const python = process.env.E2E_PYTHON ?? (fs.existsSync(venv) ? venv : 'python3');
  writeSettings(run, { 'ghostline.pythonPath': python, ...model });
  step('starting code-server');
  state.server = await startCodeServer(run, vsix);
  state.browser = await launchBrowser(run);
  const page = await state.browser.newPage({ viewport: { width: 1400, height: 860 } });
  await page.goto(`${state.server.url}/?folder=${encodeURIComponent(run.ws)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  step('workbench loaded; waiting for the ghostline server to be ready');
  step(`status bar: ${await waitForStatus(page, 'sparkle', 120_000)}`);
  await checkNotifications(page);

  await openFile(page, 'main.py');
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await page.keyboard.type('def count_lines(path):');
  await page.keyboard.press('Enter');
  // Keystrokes can race the provider's registration: if no ghost text shows, edit again
  // (a space and its deletion) so VS Code asks once more.
  const ghost = page.locator('.ghost-text-decoration, .ghost-text');
  const shows = (timeout) => ghost.first().waitFor({ timeout }).then(() => true, () => false);
  await waitFor(async () => {
    if (await shows(5000)) return true;
    await page.keyboard.type(' ');
    await page.keyboard.press('Backspace');
    return false;
  }, 90_000, 'ghost text');
  const suggestion = (await ghost.allInnerTexts()).join('');
  step(`ghost text: ${JSON.stringify(suggestion)}`);
  await page.screenshot({ path: path.join(shots, 'ghost-text.png') });
  const file = path.join(run.ws, 'main.py');
  const before = fs.readFileSync(file, 'utf8');
  // Ctrl+Right takes the first word (a partial accept, seen by the extension in the edit it
  // makes); the rest stays on screen.
  const words = suggestion.trim().split(/\s+/).length;
  if (words > 1) {
    await page.keyboard.press('Control+ArrowRight');
    const rest = await waitFor(async () => {
      const shown = (await ghost.allInnerTexts()).join('');
      return shown && shown !== suggestion && shown;
    }, 10_000, 'the rest of the ghost text after Ctrl+Right');
    step(`Ctrl+Right took a word; still shown: ${JSON.stringify(rest)}`);
  }
  // Tab accepts the rest; where it starts with indentation VS Code's first Tab indents.
  for (let tabs = 1; ; tabs++) {
    await page.keyboard.press('Tab');
    if (await ghost.first().waitFor({ state: 'detached', timeout: 3000 }).then(() => true, () => false)) break;
    assert.ok(tabs < 3, 'Tab did not accept the ghost text');
  }
  await page.keyboard.press('Control+S');
  const after = await waitFor(() => { const t = fs.readFileSync(file, 'utf8'); return t !== before && t; }, 10_000, 'saved file');
  const squash = (text) => text.replace(/\s+/g, '');
  assert.ok(after.includes('def count_lines(path):'), 'typed text saved');
  assert.ok(squash(after).includes(squash(suggestion)), `accepted ${JSON.stringify(suggestion)} in the file`);
  step('Tab accepted the completion; the document changed');

  // Both accepts reached the server's local log in the run's cache folder: the word as a
  // partial accept, the rest through the item's command; `ghostline stats` counts the
  // suggestion as taken whole, with all its characters.
  const log = path.join(run.env.XDG_CACHE_HOME, 'ghostline', 'telemetry', 'events.jsonl');
  const stats = await waitFor(() => {
    const out = execFileSync(python, ['-m', 'training.cli', 'stats', '--log', log],
      { cwd: repo, env: run.env, encoding: 'utf8', stdio: 'pipe' });
    return Number(/ (\d+) whole,/.exec(out)?.[1]) >= 1 && out;
  }, 15_000, 'ghostline stats to count the accepted suggestion');
  stats.split('\n').filter((line) => line.trim()).forEach((line) => step(`stats | ${line}`));
  const events = fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const accepted = events.filter((e) => e.event === 'accepted' || e.event === 'partial');
  assert.deepEqual(accepted.map((e) => e.event), words > 1 ? ['partial', 'accepted'] : ['accepted'], 'accept events');
  // Every character was taken: leading indentation counts when Ctrl+Right took it, not when
  // VS Code's first Tab indented the line instead.
  const total = accepted.reduce((n, e) => n + e.acceptedChars, 0);
  assert.ok([[...suggestion].length, [...suggestion.trimStart()].length].includes(total),
    `characters accepted: ${total} of ${JSON.stringify(suggestion)}`);
  assert.ok(events.every((e) => !('text' in e)), 'no code in the log');

  await command(page, 'ghostline: Toggle Completions');
  step(`toggled: ${await waitForStatus(page, 'circle-slash')}`);
  await command(page, 'ghostline: Toggle Completions');
  step(`toggled: ${await waitForStatus(page, 'sparkle')}`);
  const servers = processes(run.root).filter((p) => p.cmdline.includes('lsp_server'));
  assert.equal(servers.length, 1, 'one language server');
  process.kill(servers[0].pid, 'SIGKILL');
  step(`killed the server: ${await waitForStatus(page, 'error')}`);
  step(`restarted after a crash: ${await waitForStatus(page, 'sparkle')}`);

  await openFile(page, 'smoothing.py');
  await page.keyboard.press('Control+G');
  await page.keyboard.type('4');
  await page.keyboard.press('Enter');
  for (let i = 0; i < 12; i++) await page.keyboard.press('Shift+ArrowDown');
  await command(page, 'ghostline: Find Similar Code');
  // The copy, metrics.rolling_mean, is listed with its score; opening it shows its code.
  const row = page.locator('.monaco-list-row', { hasText: 'metrics.py' })
    .filter({ hasText: 'rolling_mean' }).filter({ hasText: /\b[01]\.\d\d\b/ });
  await row.first().waitFor({ timeout: 60_000 });
  step(`similar: ${(await page.locator('.monaco-list-row', { hasText: /\d\.\d\d/ }).allInnerTexts()).join(' | ').replace(/\s+/g, ' ')}`);
  await checkNotifications(page);
  const sash = await page.locator('.part.sidebar').boundingBox();
  await page.mouse.move(sash.x + sash.width, sash.y + 200);
  await page.mouse.down();
  await page.mouse.move(sash.x + sash.width + 180, sash.y + 200, { steps: 5 });
  await page.mouse.up();
  await page.mouse.move(900, 700);
  await waitFor(async () => (await page.locator('.monaco-sash.hover, .monaco-sash.active').count()) === 0, 5000, 'sash to settle');
  await row.first().click();
  await page.locator('.editor-instance .view-lines', { hasText: 'def rolling_mean' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'find-similar.png') });
}

const run = makeRun();
const state = {};
fs.mkdirSync(shots, { recursive: true });
const watchdog = setTimeout(() => { console.error('e2e: overall timeout'); void cleanup(run, state.server, state.browser).then(() => process.exit(1)); }, 300_000);
try {
  await main(run, state);
  console.log(`e2e passed; screenshots in ${shots}`);
} catch (error) {
  process.exitCode = 1;
  console.error(error);
  await state.browser?.contexts()[0]?.pages()[0]?.screenshot({ path: path.join(shots, 'failure.png') }).catch(() => {});
  console.error(`code-server log: ${path.join(run.root, 'code-server.log')}`);
} finally {
  clearTimeout(watchdog);
  await cleanup(run, state.server, state.browser);
  if (!process.exitCode && !process.env.E2E_KEEP) fs.rmSync(run.root, { recursive: true, force: true });
}
