//! Email address validation, ported from REMP CRM: the syntax check (Nette
//! `Validators::isEmail`, REMP's `RegexpValidator`), the disposable-domain blocklist
//! (REMP's `StaticDomainFileValidator`) and the ordered chain of the two that REMP calls
//! `EmailValidator`.
//!
//! Where REMP applies which check (always `isEmail` on `users/create`, the chain unless
//! `disable_email_validation`, the 255-character cap, …) is the handlers' business, not this
//! module's. The shipped blocklist is `assets/blocked_email_domains.txt`; its header names
//! its source and licence.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use regex::bytes::Regex;

/// Inputs longer than this many bytes are rejected by [`is_email`] without running the
/// regex. No real address comes near it (REMP's handlers cap emails at 255 characters).
const MAX_EMAIL_BYTES: usize = 1_000;

/// Nette `Validators::isEmail`, translated for `regex::bytes`:
///
/// ```text
/// (^(?n)("([ !#-[\]-~]*|\\[ -~])+"|[-a-z0-9!#$%&'*+/=?^_`{|}~]+(\.[-a-z0-9!#$%&'*+/=?^_`{|}~]+)*)
///   @([0-9a-z\x80-\xFF]([-0-9a-z\x80-\xFF]{0,61}[0-9a-z\x80-\xFF])?\.)+
///   [a-z\x80-\xFF]([-0-9a-z\x80-\xFF]{0,17}[a-z\x80-\xFF])?$)Dix
/// ```
///
/// * `i` → `(?i)`; with `-u` case folding is ASCII-only, like PCRE without the `u` flag.
/// * `-u` makes `\x80-\xFF` mean raw bytes, i.e. any byte of a non-ASCII UTF-8 sequence,
///   which is how PCRE reads the pattern when it runs on PHP's byte strings.
/// * `D` → `\z`: the end of the input only, never before a trailing newline.
/// * `(?n)` (no capturing groups) → `(?:…)`; `x` changes nothing (the pattern's only
///   significant spaces are inside character classes, where `x` keeps them).
/// * `[` inside a class is escaped because Rust's regex syntax would read a nested class.
const NETTE_EMAIL_PATTERN: &str = concat!(
    r"(?i-u)\A(?:",
    // quoted local part: printable ASCII except `"` and `\`, or a backslash-escaped printable
    r#""(?:[ !#-\[\]-~]*|\\[ -~])+""#,
    r"|",
    // unquoted local part: dot-separated RFC 5322 atoms
    r"[-a-z0-9!#$%&'*+/=?^_`{|}~]+(?:\.[-a-z0-9!#$%&'*+/=?^_`{|}~]+)*",
    r")@",
    // domain labels (RFC 1034), each followed by a dot
    r"(?:[0-9a-z\x80-\xFF](?:[-0-9a-z\x80-\xFF]{0,61}[0-9a-z\x80-\xFF])?\.)+",
    // top-level domain: 1-19 characters, starting and ending with a letter (or non-ASCII byte)
    r"[a-z\x80-\xFF](?:[-0-9a-z\x80-\xFF]{0,17}[a-z\x80-\xFF])?",
    r"\z",
);

static NETTE_EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(NETTE_EMAIL_PATTERN).expect("NETTE_EMAIL_PATTERN is a constant, valid regex"));

/// A faithful port of Nette `Validators::isEmail` (REMP's `RegexpValidator`).
///
/// Matching is case-insensitive and byte-wise: every non-ASCII byte counts as a domain
/// "letter", so `user@příklad.cz` passes while `user@example.c0m` (digit in the TLD),
/// `0test@user` (no TLD at all) and `user@example.com\n` (trailing newline) fail.
///
/// One deliberate difference: inputs longer than 1,000 bytes are rejected without running
/// the regex. Never panics.
pub fn is_email(value: &str) -> bool {
    value.len() <= MAX_EMAIL_BYTES && NETTE_EMAIL.is_match(value.as_bytes())
}

/// The shipped disposable-domain list, one domain per line.
const BUILTIN_BLOCKLIST: &str = include_str!("../../assets/blocked_email_domains.txt");

/// A set of email domains that are not accepted (REMP's `StaticDomainFileValidator`).
///
/// Domains are stored lowercased and trimmed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DomainBlocklist {
    domains: HashSet<String>,
}

impl DomainBlocklist {
    /// The list shipped with the service (`assets/blocked_email_domains.txt`). Blank lines
    /// and lines starting with `#` are skipped.
    pub fn builtin() -> DomainBlocklist {
        let domains = BUILTIN_BLOCKLIST
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_ascii_lowercase)
            .collect();
        DomainBlocklist { domains }
    }

    /// Adds domains, e.g. from configuration. Each is trimmed and lowercased; empty entries
    /// are ignored.
    pub fn with_extra(mut self, domains: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        for domain in domains {
            let domain = domain.as_ref().trim();
            if !domain.is_empty() {
                self.domains.insert(domain.to_ascii_lowercase());
            }
        }
        self
    }

    /// Whether `email`'s domain is on the list.
    ///
    /// As in REMP, the email is split on `@` and only an email with exactly two parts can be
    /// blocked (`a@b@c` never is). Unlike REMP, which compares the domain exactly and
    /// case-sensitively, the domain is lowercased first (the list is lowercase), so
    /// `x@Mailinator.COM` is blocked as well as `x@mailinator.com`.
    pub fn is_blocked(&self, email: &str) -> bool {
        let mut parts = email.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(_local), Some(domain), None) => self.domains.contains(&domain.to_ascii_lowercase()),
            _ => false,
        }
    }

    /// Number of domains on the list.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether the list has no domains.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

impl fmt::Debug for DomainBlocklist {
    // Thousands of domains are noise in logs and test failures; show the count only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainBlocklist").field("len", &self.domains.len()).finish()
    }
}

/// Why [`EmailValidator::check`] rejected an email: the first validator of the chain that
/// failed (REMP's `lastValidator()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailRejection {
    /// Not an email address by Nette `Validators::isEmail`.
    Syntax,
    /// The domain is on the disposable-domain blocklist.
    BlockedDomain,
}

impl EmailRejection {
    /// Short name of the validator that failed, as printed by `user check-emails`:
    /// `"regexp"` or `"blocked-domain"`.
    pub fn validator_name(&self) -> &'static str {
        match self {
            EmailRejection::Syntax => "regexp",
            EmailRejection::BlockedDomain => "blocked-domain",
        }
    }
}

impl fmt::Display for EmailRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmailRejection::Syntax => "not a valid email address",
            EmailRejection::BlockedDomain => "email domain is not allowed",
        })
    }
}

impl std::error::Error for EmailRejection {}

/// REMP's `EmailValidator` with its two built-in validators, run in order and stopping at
/// the first failure: the syntax check ([`is_email`]), then the [`DomainBlocklist`].
#[derive(Debug, Clone)]
pub struct EmailValidator {
    blocklist: DomainBlocklist,
}

impl EmailValidator {
    /// A chain of the syntax check and `blocklist`.
    pub fn new(blocklist: DomainBlocklist) -> Self {
        EmailValidator { blocklist }
    }

    /// The blocklist this validator uses.
    pub fn blocklist(&self) -> &DomainBlocklist {
        &self.blocklist
    }

    /// `Ok(())` if every validator accepts `email`, otherwise the first one that did not.
    pub fn check(&self, email: &str) -> Result<(), EmailRejection> {
        if !is_email(email) {
            return Err(EmailRejection::Syntax);
        }
        if self.blocklist.is_blocked(email) {
            return Err(EmailRejection::BlockedDomain);
        }
        Ok(())
    }

    /// Whether [`check`](Self::check) accepts `email`.
    pub fn is_valid(&self, email: &str) -> bool {
        self.check(email).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_compiles() {
        LazyLock::force(&NETTE_EMAIL);
    }

    #[test]
    fn accepts_valid_addresses() {
        for email in [
            "user@example.com",
            "first.last+tag@sub.example.co.uk",
            "\"quoted local\"@example.com",
            "\"esc\\\"aped\"@example.com",
            "\"\"@example.com", // the quoted part may be empty: `(…*|…)+` matches ""
            "user@xn--80ak6aa92e.com",
            "user@příklad.cz",
            "user@example.рф",
            "a@b.co",
            "a@1.io",
            "x@a-b.c",
            "!#$%&'*+/=?^_`{|}~-@example.org",
            "user@123.example.com",
            "user@sub.example.a",
            "user@example.abcdefghijklmnopqrs", // 19-letter TLD, the maximum
            "user@example.a-b",
            "user@example.c0m", // digits are allowed inside the TLD, only not at its ends
        ] {
            assert!(is_email(email), "{email:?} should be valid");
        }
    }

    #[test]
    fn rejects_invalid_addresses() {
        let long_label = format!("user@{}.com", "a".repeat(64));
        let too_long = format!("{}@example.com", "a".repeat(MAX_EMAIL_BYTES));
        for email in [
            "",
            "0test@user",
            "user@example.co1", // the TLD must end with a letter…
            "user@example.1co", // …and start with one
            "user@example.com\n",
            "user@example.com\r\n",
            "\nuser@example.com",
            " user@example.com",
            "user@example.com ",
            "a@b",
            "@example.com",
            "user@",
            "user@-example.com",
            "user@example-.com",
            "user@example..com",
            "user@.example.com",
            "user@example.com.",
            "user@example.-com",
            "user@example.com-",
            "us er@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@@example.com",
            "a@b@example.com",
            "user@exa_mple.com",
            "user@[127.0.0.1]",
            "user@example.abcdefghijklmnopqrst", // 20-letter TLD
            "\"\"\"@example.com",                // a bare `"` inside quotes
            "\"unterminated@example.com",
            "\"bad\\\"@example.com",
            "\"tab\there\"@example.com",
            "\"naïve\"@example.com", // quoted local part is ASCII only
            "naïve@example.com",     // so is the unquoted one
            "user\0@example.com",
            &long_label,
            &too_long,
        ] {
            assert!(!is_email(email), "{email:?} should be invalid");
        }
    }

    #[test]
    fn domain_label_may_be_63_characters() {
        assert!(is_email(&format!("user@{}.com", "a".repeat(63))));
        assert!(is_email(&format!("user@{}b.com", "a-".repeat(31))));
    }

    #[test]
    fn length_cap_is_on_bytes() {
        // A valid address just under the cap passes; one byte over fails.
        let local = "a".repeat(MAX_EMAIL_BYTES - "@example.com".len());
        let at_cap = format!("{local}@example.com");
        assert_eq!(at_cap.len(), MAX_EMAIL_BYTES);
        assert!(is_email(&at_cap));
        assert!(!is_email(&format!("a{at_cap}")));
    }

    #[test]
    fn is_case_insensitive() {
        assert!(is_email("USER@EXAMPLE.COM"));
        assert!(is_email("User.Name@Sub.Example.Org"));
        assert!(is_email("USER@EXAMPLE.C0M"));
        assert!(!is_email("USER@EXAMPLE.CO1"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for email in ["\u{0}", "@", "@@@@", "\"", "\"\"", "\\", "😀@😀.😀", "\u{feff}user@example.com"] {
            let _ = is_email(email);
            let _ = EmailValidator::new(DomainBlocklist::builtin()).check(email);
        }
        // Non-ASCII bytes count as domain letters, even in the TLD, as in PHP.
        assert!(is_email("a@😀.😀"));
        // A long run that would make a backtracking engine struggle stays cheap.
        let quoted = format!("\"{}@example.com", "a\\".repeat(400));
        assert!(!is_email(&quoted));
    }

    #[test]
    fn builtin_blocklist_is_loaded() {
        let list = DomainBlocklist::builtin();
        assert!(list.len() > 3_000, "only {} domains", list.len());
        assert!(!list.is_empty());
        assert!(list.is_blocked("someone@mailinator.com"));
        assert!(list.is_blocked("someone@10minutemail.com"));
        assert!(list.is_blocked("someone@0-mail.com"));
        assert!(!list.is_blocked("someone@gmail.com"));
        assert!(!list.is_blocked("someone@example.com"));
        // Comment lines are not domains.
        assert!(list.domains.iter().all(|d| !d.starts_with('#') && !d.is_empty()));
    }

    #[test]
    fn blocklist_compares_lowercased_domain() {
        let list = DomainBlocklist::builtin();
        assert!(list.is_blocked("X@Mailinator.COM"));
        assert!(list.is_blocked("x@MAILINATOR.COM"));
    }

    #[test]
    fn blocklist_needs_exactly_two_parts() {
        let list = DomainBlocklist::default().with_extra(["c", "b@c", "mailinator.com"]);
        assert!(!list.is_blocked("a@b@c"));
        assert!(!list.is_blocked("a@b@mailinator.com"));
        assert!(!list.is_blocked("mailinator.com"));
        assert!(!list.is_blocked(""));
        assert!(list.is_blocked("a@c"));
        // Only the domain part is compared, whole.
        assert!(!list.is_blocked("a@sub.mailinator.com"));
        assert!(!list.is_blocked("mailinator.com@example.com"));
    }

    #[test]
    fn with_extra_extends_the_list() {
        let builtin = DomainBlocklist::builtin();
        let n = builtin.len();
        assert!(!builtin.is_blocked("a@spam.example"));
        let list = builtin.with_extra(vec![" Spam.Example ".to_string(), String::new(), "mailinator.com".to_string()]);
        assert_eq!(list.len(), n + 1);
        assert!(list.is_blocked("a@spam.example"));
        assert!(list.is_blocked("a@SPAM.example"));

        let empty = DomainBlocklist::default();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert!(!empty.is_blocked("a@mailinator.com"));
        let extra: &[&str] = &["only.example"];
        let one = empty.with_extra(extra);
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn validator_runs_syntax_then_blocklist() {
        let validator = EmailValidator::new(DomainBlocklist::builtin().with_extra(["corp.test"]));
        assert_eq!(validator.check("user@example.com"), Ok(()));
        assert!(validator.is_valid("user@example.com"));
        assert_eq!(validator.check("0test@user"), Err(EmailRejection::Syntax));
        assert_eq!(validator.check("user@mailinator.com"), Err(EmailRejection::BlockedDomain));
        assert_eq!(validator.check("User@Mailinator.Com"), Err(EmailRejection::BlockedDomain));
        assert_eq!(validator.check("user@corp.test"), Err(EmailRejection::BlockedDomain));
        // Syntax is checked first: a malformed address on a blocked domain is a syntax error.
        assert_eq!(validator.check("us er@mailinator.com"), Err(EmailRejection::Syntax));
        assert_eq!(validator.check("a@b@mailinator.com"), Err(EmailRejection::Syntax));
        assert!(!validator.is_valid("user@mailinator.com"));
        assert_eq!(validator.blocklist().len(), DomainBlocklist::builtin().len() + 1);
    }

    #[test]
    fn rejection_names_and_messages() {
        assert_eq!(EmailRejection::Syntax.validator_name(), "regexp");
        assert_eq!(EmailRejection::BlockedDomain.validator_name(), "blocked-domain");
        assert_eq!(EmailRejection::Syntax.to_string(), "not a valid email address");
        assert_eq!(EmailRejection::BlockedDomain.to_string(), "email domain is not allowed");
    }

    #[test]
    fn debug_of_blocklist_is_short() {
        let shown = format!("{:?}", DomainBlocklist::builtin());
        assert!(shown.starts_with("DomainBlocklist { len: "), "{shown}");
        assert!(shown.len() < 64, "{shown}");
    }
}
