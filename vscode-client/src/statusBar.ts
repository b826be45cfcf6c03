// The status-bar item: on/off, model, last completion latency, errors. Click toggles.
import * as vscode from 'vscode';
import { ServerStatus, describeStatus, parseStatus } from './status';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('ghostline.status', vscode.StatusBarAlignment.Right, 100);
  private last: ServerStatus = { state: 'loading', model: '', lastLatencyMs: null };

  constructor() {
    this.item.name = 'ghostline';
    this.item.command = 'ghostline.toggle';
    this.show(this.last);
    this.item.show();
  }

  /** A `ghostline/status` notification from the server. */
  update(raw: unknown): void {
    this.show(parseStatus(raw));
  }

  loading(): void {
    this.show({ ...this.last, state: 'loading', message: null });
  }

  failed(message: string): void {
    this.show({ ...this.last, state: 'error', message });
  }

  private show(status: ServerStatus): void {
    this.last = status;
    const view = describeStatus(status);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
