// Email validator for crm-users: rejects addresses at misspelt domains of big mail providers
// ("ada@gmial.com") and names the domain the user most likely meant.
//
// Implements the `email-validator` world of crm:users@0.1.0 (wit/v0.1/email-validator.wit):
// the export `emailValidation.validate(email)` returns nothing to accept and throws a string
// (the reason) to reject.

import { configGet, log } from 'crm:users/host@0.1.0';

const DEFAULT_PROVIDERS = [
  'gmail.com', 'googlemail.com', 'yahoo.com', 'hotmail.com', 'outlook.com', 'live.com',
  'icloud.com', 'aol.com', 'gmx.de', 'gmx.net', 'web.de', 'seznam.cz', 'centrum.sk',
  'azet.sk', 'post.sk', 'zoznam.sk', 'protonmail.com', 'proton.me',
];

// Domains at most this many edits away from a provider's (and not equal to it) are typos.
const MAX_EDITS = 2;

// Damerau-Levenshtein distance (optimal string alignment): a swap of two neighbouring letters
// ("gmial") is one edit, as people mistype. Three rolling rows keep it allocation-light, which
// matters in an interpreter.
export function distance(a, b) {
  let before = new Int32Array(b.length + 1);
  let previous = new Int32Array(b.length + 1);
  let current = new Int32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) previous[j] = j;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2] + 1);
      }
      current[j] = d;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length];
}

function providers() {
  const configured = configGet('providers');
  if (!configured) return DEFAULT_PROVIDERS;
  return configured.split(',').map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0);
}

// The provider domain `domain` is a misspelling of, or undefined.
export function suggestion(domain, known) {
  if (known.includes(domain)) return undefined;
  let best;
  let bestEdits = MAX_EDITS + 1;
  for (const candidate of known) {
    // Short domains are too close to each other for a guess to be safe; lengths further apart
    // than MAX_EDITS cannot be within it.
    if (candidate.length < 6 || Math.abs(candidate.length - domain.length) > MAX_EDITS) continue;
    const edits = distance(domain, candidate);
    if (edits < bestEdits) {
      best = candidate;
      bestEdits = edits;
    }
  }
  return best;
}

export const emailValidation = {
  validate(email) {
    const at = email.lastIndexOf('@');
    if (at < 0) return; // the built-in validators reject it
    const domain = email.slice(at + 1).trim().toLowerCase();
    const meant = suggestion(domain, providers());
    if (meant !== undefined) {
      log('debug', `${domain} looks like a misspelling of ${meant}`);
      throw `The domain ${domain} looks misspelt: did you mean ${email.slice(0, at)}@${meant}?`;
    }
  },
};
