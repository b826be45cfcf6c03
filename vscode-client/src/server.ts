// The language client: starts `python -m lsp_server`, restarts it after a crash with
// back-off, keeps the server's settings in step with VS Code's, and tells it what became of
// its suggestions (acceptance.ts).
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  CloseAction, CloseHandlerResult, DidChangeConfigurationNotification, ErrorAction,
  LanguageClient, LanguageClientOptions, State,
} from 'vscode-languageclient/node';
import { AcceptanceTelemetry } from './acceptance';
import { Backoff } from './backoff';
import { SECTION, pythonCandidates, resolvePython, serverSettingNames, serverSettings } from './config';
import { StatusBar } from './statusBar';
import { SUGGESTION_EVENT } from './telemetry';

export class Server implements vscode.Disposable {
  client: LanguageClient | undefined;
  // Files changed outside the editor reach the server's similarity index.
  private readonly watcher = vscode.workspace.createFileSystemWatcher('**/*');
  private readonly acceptance = new AcceptanceTelemetry((event) => {
    if (this.client?.isRunning()) void this.client.sendNotification(SUGGESTION_EVENT, event);
  });

  constructor(private readonly context: vscode.ExtensionContext,
              private readonly output: vscode.LogOutputChannel,
              private readonly status: StatusBar) {}

  /** Settings for the server, named as in package.json minus the client-only ones. */
  settings(): Record<string, unknown> {
    const properties = this.context.extension.packageJSON.contributes.configuration.properties;
    const config = vscode.workspace.getConfiguration(SECTION);
    return serverSettings(serverSettingNames(properties), (name) => config.get(name));
  }

  python(): string {
    const folders = (vscode.workspace.workspaceFolders ?? [])
      .filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    const configured = vscode.workspace.getConfiguration(SECTION).get<string>('pythonPath');
    return resolvePython(configured, pythonCandidates(this.context.extensionPath, folders), fs.existsSync);
  }

  async start(): Promise<void> {
    const client = this.create(this.python());
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.status.failed(`the server did not start: ${error instanceof Error ? error.message : error}`);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    try {
      await client?.dispose();
    } catch (error) {
      // A server that never started or already died has nothing to shut down.
      this.output.info(`stopping the server: ${error instanceof Error ? error.message : error}`);
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** workspace/didChangeConfiguration with the whole `ghostline` section. */
  async pushSettings(): Promise<void> {
    if (this.client?.isRunning()) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type,
        { settings: { [SECTION]: this.settings() } });
    }
  }

  private create(python: string): LanguageClient {
    this.output.info(`starting ${python} -m lsp_server`);
    const backoff = new Backoff();
    let client: LanguageClient | undefined = undefined;
    const options: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      synchronize: { fileEvents: this.watcher },
      initializationOptions: () => this.settings(),
      middleware: this.acceptance.middleware,
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        closed: () => this.closed(backoff, () => this.client !== client),
      },
    };
    client = new LanguageClient(SECTION, 'ghostline', {
      command: python, args: ['-m', 'lsp_server'],
      // The server starts in the workspace: never let Python import the workspace's own modules.
      options: { env: { ...process.env, PYTHONSAFEPATH: '1' } },
    }, options);
    client.onDidChangeState(({ newState }) => {
      if (newState === State.Starting) this.status.loading();
      if (newState === State.Running) backoff.started();
    });
    client.onNotification('ghostline/status', (raw: unknown) => this.status.update(raw));
    return client;
  }

  /** The server's process ended without being asked to: wait, then restart, or give up. */
  private async closed(backoff: Backoff, stale: () => boolean): Promise<CloseHandlerResult> {
    if (stale()) return { action: CloseAction.DoNotRestart, handled: true }; // replaced or stopped
    const delay = backoff.nextDelay();
    if (delay === undefined) {
      const message = `the server stopped ${backoff.restarts} times in a row; see the log, then run "ghostline: Restart Server"`;
      this.status.failed(message);
      return { action: CloseAction.DoNotRestart, message };
    }
    const message = `the server stopped; restarting in ${delay / 1000} s`;
    this.output.warn(message);
    this.status.failed(message);
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (stale()) return { action: CloseAction.DoNotRestart, handled: true };
    return { action: CloseAction.Restart, message: 'restarting the server', handled: true };
  }

  dispose(): void {
    this.watcher.dispose();
    this.acceptance.dispose();
    void this.stop();
  }
}
