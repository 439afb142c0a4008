// Test fixture (JavaScript, QuickJS): an email validator that keeps a call count in module
// state, to tell a warm instance from a fresh one, and that never returns for addresses
// starting with `trap@` (fuel or the deadline stops it: a failed call).

let calls = 0;

export const emailValidation = {
  validate(email) {
    if (email.startsWith('trap@')) {
      for (;;) {}
    }
    calls += 1;
    if (calls > 1) {
      throw `this instance saw ${calls - 1} earlier call(s)`;
    }
  },
};
