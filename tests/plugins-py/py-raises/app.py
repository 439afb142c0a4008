"""Test fixture (Python, componentize-py): an email validator that writes two lines to stderr
and raises an exception that is not the WIT error type for addresses starting with `trap@`
(a trap), and accepts everything else."""

import sys

from wit_world import exports


class EmailValidation(exports.EmailValidation):
    def validate(self, email: str) -> None:
        if email.startswith("trap@"):
            print("py-raises: about to raise a ValueError", file=sys.stderr)
            print(f"py-raises: validate got {email}", file=sys.stderr)
            raise ValueError("not the WIT error type")
