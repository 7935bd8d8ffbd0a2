import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS } from '../../../src/cli/commands/index.js';

// The registry loads each command's module only when it runs (issue 13, item 5): the name it is
// found by must be the name the command gives itself, or `crm-gateway <name>` runs another one.
test('cli: every registered command loads, under the name it is registered by', async () => {
  assert.ok(COMMANDS.size > 0);
  for (const [name, load] of COMMANDS) {
    const command = await load();
    assert.equal(command.name, name);
    assert.ok(command.usage.startsWith(name), `the usage line of ${name} starts with its name: ${command.usage}`);
  }
});
