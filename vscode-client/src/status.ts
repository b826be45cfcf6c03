// What the status-bar item says, from the server's `ghostline/status` notification.
// Client-side events (starting, crashed, restarting) are expressed in the same shape.

export type ServerState = 'loading' | 'ready' | 'error' | 'disabled';

export interface ServerStatus {
  state: ServerState;
  model: string;
  lastLatencyMs: number | null;
  message?: string | null;
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

const ICONS: Record<ServerState, string> = {
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  error: '$(error)',
  disabled: '$(circle-slash)',
};

export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Accepts anything: a malformed notification reads as an error, not a crash. */
export function parseStatus(raw: unknown): ServerStatus {
  const value = (raw ?? {}) as Partial<ServerStatus>;
  const state = value.state && value.state in ICONS ? value.state : 'error';
  return {
    state,
    model: typeof value.model === 'string' ? value.model : '',
    lastLatencyMs: typeof value.lastLatencyMs === 'number' ? value.lastLatencyMs : null,
    message: typeof value.message === 'string' ? value.message
      : state === value.state ? null : `unexpected status from the server: ${JSON.stringify(raw)}`,
  };
}

export function describeStatus(status: ServerStatus): StatusView {
  const latency = formatLatency(status.lastLatencyMs);
  const model = status.model ? ` (${status.model})` : '';
  const detail = status.state === 'disabled' ? ' off' : status.state === 'ready' && latency ? ` ${latency}` : '';
  const lines = [
    `ghostline: ${status.state === 'disabled' ? 'completions off' : status.state}`,
    status.model ? `model: ${status.model}` : '',
    latency ? `last completion: ${latency}` : '',
    status.message ?? '',
    status.state === 'disabled' ? 'Click to turn completions on' : 'Click to turn completions off',
  ];
  return {
    text: `${ICONS[status.state]} ghostline${model}${detail}`,
    tooltip: lines.filter(Boolean).join('\n'),
    error: status.state === 'error',
  };
}
