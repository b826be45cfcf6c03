// Driving the VS Code workbench from Chromium: commands, files, notifications, status bar.
import assert from 'node:assert/strict';

export const step = (what) => console.log(`[e2e ${new Date().toISOString().slice(11, 19)}] ${what}`);

export async function command(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
  await page.keyboard.press('Enter');
}

export async function openFile(page, name) {
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor();
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tab.active', { hasText: name }).waitFor();
  await page.locator('.monaco-editor .view-lines').first().click();
}

/** Logs the notifications shown so far, fails on ghostline errors, then clears them. */
export async function checkNotifications(page) {
  const shown = await page.$$eval('.notification-list-item', (items) => items.map((item) => ({
    error: Boolean(item.querySelector('.codicon-error')),
    text: item.querySelector('.notification-list-item-message')?.textContent ?? '',
  })));
  shown.forEach((n) => step(`notification: ${n.text}`));
  const errors = shown.filter((n) => n.error && /ghostline/.test(n.text));
  assert.deepEqual(errors, [], 'ghostline showed errors');
  if (shown.length) await command(page, 'Notifications: Clear All Notifications');
}

/** ghostline's status-bar item; `state` is the codicon it shows (sparkle = ready). */
export async function waitForStatus(page, icon, timeout = 60_000) {
  const item = page.locator('.statusbar-item', { hasText: 'ghostline' });
  await item.locator(`.codicon-${icon}`).waitFor({ timeout });
  return (await item.innerText()).trim();
}
