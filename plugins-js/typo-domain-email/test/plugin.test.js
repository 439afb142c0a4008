// Tests of the built component through `crm-users plugin run` (no server needed):
//
//     CRM_USERS=path/to/crm-users npm test
//
// CRM_USERS defaults to `crm-users` on PATH, WASM to typo_domain_email.wasm in the folder above.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const crmUsers = process.env.CRM_USERS ?? 'crm-users';
const wasm = process.env.WASM ?? join(here, 'typo_domain_email.wasm');

function validate(email) {
  const out = execFileSync(crmUsers, [
    'plugin', 'run', wasm, '--manifest', join(here, 'plugin.toml'),
    '--call', 'validate', '--input', JSON.stringify(email),
  ], { encoding: 'utf8' });
  return JSON.parse(out);
}

test('refuses a misspelt provider domain and names the right one', () => {
  const report = validate('ada@gmial.com');
  assert.match(report.result.err, /did you mean ada@gmail\.com\?/);
  assert.ok(report.log.includes('[debug] gmial.com looks like a misspelling of gmail.com'), report.log);
});

test('accepts providers spelt right and domains far from any provider', () => {
  for (const email of ['ada@gmail.com', 'ada@seznam.cz', 'ada@example.org', 'ada@company.sk']) {
    assert.deepEqual(validate(email).result, { ok: null }, email);
  }
});

test('catches swapped, missing and extra letters', () => {
  for (const [email, meant] of [['a@hotmial.com', 'hotmail.com'], ['a@outlok.com', 'outlook.com'], ['a@yahooo.com', 'yahoo.com']]) {
    assert.match(validate(email).result.err, new RegExp(`did you mean a@${meant.replace('.', '\\.')}`), email);
  }
});
