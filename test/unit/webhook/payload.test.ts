import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readNotification, refuseStale, REPLAY_WINDOW_MS } from '../../../src/webhook/payload.js';
import { GatewayError } from '../../../src/errors.js';

const NOW = Date.UTC(2025, 0, 15);
const secs = (ms: number): string => String(Math.floor(ms / 1000));

function payload(value: Record<string, unknown>, field = 'messages'): Buffer {
  return Buffer.from(JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '102290129340398', changes: [{ field, value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' }, ...value } }] }] }));
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err.code;
  }
  return undefined;
}

test('messages and statuses give dedup keys, times and phone numbers, never content', () => {
  const facts = readNotification(
    payload({
      contacts: [{ profile: { name: 'Ana' }, wa_id: '34600111222' }],
      messages: [{ from: '34600111222', id: 'wamid.AAA', timestamp: secs(NOW), type: 'text', text: { body: 'hola' } }],
      statuses: [{ id: 'wamid.BBB', status: 'delivered', timestamp: secs(NOW - 1000), recipient_id: '34600999888' }],
    }),
  );
  assert.deepEqual(facts.eventKeys, ['message:wamid.AAA', 'status:wamid.BBB:delivered']);
  assert.deepEqual(facts.timestamps, [Math.floor(NOW / 1000) * 1000, Math.floor((NOW - 1000) / 1000) * 1000]);
  assert.deepEqual([...facts.phoneNumbers].sort(), ['15550783881', '34600111222', '34600999888']);
  assert.equal(facts.messages, 1);
  assert.equal(facts.statuses, 1);
  assert.ok(!JSON.stringify(facts).includes('hola'));
});

test('each status of one message is its own event; a repeated id in one payload counts once', () => {
  const facts = readNotification(
    payload({
      statuses: [
        { id: 'wamid.X', status: 'sent', timestamp: secs(NOW) },
        { id: 'wamid.X', status: 'delivered', timestamp: secs(NOW) },
        { id: 'wamid.X', status: 'delivered', timestamp: secs(NOW) },
      ],
    }),
  );
  assert.deepEqual(facts.eventKeys, ['status:wamid.X:sent', 'status:wamid.X:delivered']);
});

test('a payload without messages or statuses has no event keys', () => {
  assert.deepEqual(readNotification(payload({}, 'account_update')).eventKeys, []);
});

test('non-JSON, invalid UTF-8 and JSON that is not a WhatsApp notification are refused', () => {
  for (const bad of [
    Buffer.from('not json'),
    Buffer.from(''),
    Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]),
    Buffer.from('null'),
    Buffer.from('[]'),
    Buffer.from('{"object":"page","entry":[]}'),
    Buffer.from('{"object":"whatsapp_business_account","entry":[]}'),
    Buffer.from('{"object":"whatsapp_business_account","entry":[{"changes":"x"}]}'),
    payload({ messages: [{ id: 42 }] }),
    payload({ messages: [{ id: 'x'.repeat(300) }] }),
    payload({ statuses: [{ id: 'wamid.X' }] }),
    payload({ messages: [{ id: 'wamid.X', timestamp: 'yesterday' }] }),
  ]) {
    assert.equal(code(() => readNotification(bad)), 'WEBHOOK_PAYLOAD_INVALID', bad.toString('latin1'));
  }
});

test('a payload is stale only when every event time is older than the replay window', () => {
  const old = NOW - REPLAY_WINDOW_MS - 60_000;
  const stale = readNotification(payload({ messages: [{ id: 'a', timestamp: secs(old) }], statuses: [{ id: 'b', status: 'read', timestamp: secs(old) }] }));
  assert.equal(code(() => refuseStale(stale, NOW)), 'WEBHOOK_STALE');
  const mixed = readNotification(payload({ messages: [{ id: 'a', timestamp: secs(old) }], statuses: [{ id: 'b', status: 'read', timestamp: secs(NOW - 60_000) }] }));
  assert.equal(code(() => refuseStale(mixed, NOW)), undefined);
  const edge = readNotification(payload({ messages: [{ id: 'a', timestamp: secs(NOW - REPLAY_WINDOW_MS + 60_000) }] }));
  assert.equal(code(() => refuseStale(edge, NOW)), undefined);
  assert.equal(code(() => refuseStale(readNotification(payload({}, 'account_update')), NOW)), undefined);
});
