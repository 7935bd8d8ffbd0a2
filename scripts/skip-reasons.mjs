// A test reporter (node --test-reporter) that lists, one JSON line each, the skipped tests
// whose skip does not say why: `{ skip: true }`, `test.skip(...)` or a bare `t.skip()`.
// scripts/run-tests.mjs reads the list; under CI=1 one such test fails the run, so a check
// never stops running without a line in the output that says what it needs (issue 17).

/** A reason names why: some words, not just the word "skip". */
export function namesWhy(skip) {
  if (typeof skip !== 'string') return false;
  const text = skip.trim();
  return /[a-z]{2,}/i.test(text) && !/^(skip(ped)?|todo|tbd)$/i.test(text);
}

export default async function* skipReasons(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, name, file } = event.data;
    if (skip === undefined || skip === false || namesWhy(skip)) continue;
    yield `${JSON.stringify({ name, file, skip })}\n`;
  }
}
