import type { Migration } from '../../stores/migrations.js';
import { HEADS_TABLE } from './heads.js';

export const EVENTS_TABLE = 'gateway_security_events';

/**
 * The audit tables (versions 500–599 belong to this feature). Security events are indexed for
 * what security staff ask: a time range, by event, by client IP, by user, by reason.
 */
export const AUDIT_MIGRATIONS: readonly Migration[] = [
  {
    version: 500,
    name: 'audit chain heads and security events',
    sql: `
      CREATE TABLE ${HEADS_TABLE} (
        node text NOT NULL,
        chain text NOT NULL,
        file text NOT NULL,
        first_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        last_hash text NOT NULL,
        updated_at timestamptz NOT NULL,
        removed_at timestamptz,
        PRIMARY KEY (node, chain, file)
      );
      CREATE TABLE ${EVENTS_TABLE} (
        id bigserial PRIMARY KEY,
        time timestamptz NOT NULL,
        node text NOT NULL,
        event text NOT NULL,
        reason text,
        client_ip text,
        subject text,
        route text,
        request_id text,
        detail text,
        fields jsonb NOT NULL DEFAULT '{}'::jsonb
      );
      CREATE INDEX ${EVENTS_TABLE}_time ON ${EVENTS_TABLE} (time);
      CREATE INDEX ${EVENTS_TABLE}_event_time ON ${EVENTS_TABLE} (event, time);
      CREATE INDEX ${EVENTS_TABLE}_ip_time ON ${EVENTS_TABLE} (client_ip, time) WHERE client_ip IS NOT NULL;
      CREATE INDEX ${EVENTS_TABLE}_subject_time ON ${EVENTS_TABLE} (subject, time) WHERE subject IS NOT NULL;
      CREATE INDEX ${EVENTS_TABLE}_reason_time ON ${EVENTS_TABLE} (reason, time) WHERE reason IS NOT NULL;
    `,
  },
];
