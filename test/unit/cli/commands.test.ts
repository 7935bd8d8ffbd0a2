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

// Issue 18, item 11: the shared parser needs each command's options to refuse unknown ones and
// print its usage for --help: a command declares either its own options or its subcommands'.
test('cli: every command declares its usage and options, for itself or per subcommand', async () => {
  for (const [name, load] of COMMANDS) {
    const command = await load();
    assert.ok((command.help === undefined) !== (command.subcommands === undefined), `${name}: help or subcommands, one of them`);
    const usages = command.help ? [command.help] : Object.values(command.subcommands ?? {});
    assert.ok(usages.length > 0, name);
    for (const u of usages) {
      assert.ok(u.synopsis.startsWith(name), `${name}: ${u.synopsis}`);
      assert.ok(u.description.length > 0, `${name}: ${u.synopsis} says what it does`);
      assert.ok(!('help' in u.options) && !('verbose' in u.options), `${name}: --help and --verbose are common options`);
    }
  }
});
