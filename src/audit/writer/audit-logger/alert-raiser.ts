import { Cooldown, type AlertType, type RaiseAlert } from '../../alerts/rules.js';
import { redactFields } from '../../redact/redact.js';
import type { LoggerParts } from './parts.js';

/**
 * Alerts that follow a log sink's state, which raises each once per outage and once per
 * recovery (../sink.ts): a cooldown would swallow a real second outage that follows a
 * recovery within it (issue 18, item 6).
 */
const SINK_STATE_ALERTS: ReadonlySet<AlertType> = new Set(['log_unwritable', 'log_recovered']);

/**
 * Raises alerts (rules, resources, log-sink trouble): each a security event written by
 * `security`, a console line and a webhook POST; once per type and subject per cooldown.
 */
export function alertRaiser(p: LoggerParts, security: (event: `alert.${AlertType}`, fields: Record<string, unknown>) => void): RaiseAlert {
  const cooldown = new Cooldown(p.opts.alerts.cooldown);
  return (type: AlertType, subject, message, fields = {}) => {
    if (p.closed || (!SINK_STATE_ALERTS.has(type) && !cooldown.allow(`${type}|${subject}`, p.now()))) return;
    p.metrics.alertsTotal.inc({ type });
    const payload = redactFields({ alert: type, subject, message, ...fields }, p.identifiers);
    const time = new Date(p.now()).toISOString();
    security(`alert.${type}`, payload);
    // The other channels: an alert about the log files must reach someone who is not reading them.
    p.toConsole('error', { time, stream: 'alert', ...payload });
    p.webhook?.send({ time, node: p.opts.node, ...payload });
  };
}
