//! Email validator that rejects addresses from disposable-email domains. The domains come from
//! the manifest's `domains` config (comma separated); subdomains of a listed domain are rejected
//! too. Checking the address's syntax is the built-in validators' job, not this plugin's.

use crm_users_guest::{EmailValidator, export_email_validator, host};

/// Shown to the client when an address is rejected.
const REASON: &str = "Disposable email domains are not accepted";

struct DisposableEmail;

impl EmailValidator for DisposableEmail {
    fn validate(email: String) -> Result<(), String> {
        let Some((_, domain)) = email.rsplit_once('@') else {
            return Ok(());
        };
        let blocked = host::config("domains").unwrap_or_default();
        if is_blocked(domain, &blocked) { Err(REASON.to_owned()) } else { Ok(()) }
    }
}

export_email_validator!(DisposableEmail);

/// Whether `domain` is one of the comma-separated `blocked` domains or a subdomain of one.
fn is_blocked(domain: &str, blocked: &str) -> bool {
    // A trailing dot is the same domain in DNS; without trimming it would slip through.
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    blocked
        .split(',')
        .map(|entry| entry.trim().trim_matches('.').to_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| domain == entry || domain.strip_suffix(entry.as_str()).is_some_and(|rest| rest.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::is_blocked;

    const LIST: &str = "mailinator.com, Example.ORG,,";

    #[test]
    fn blocks_listed_domains_and_their_subdomains() {
        assert!(is_blocked("mailinator.com", LIST));
        assert!(is_blocked("MAILINATOR.com.", LIST));
        assert!(is_blocked("eu.mail.example.org", LIST));
    }

    #[test]
    fn lets_lookalike_and_other_domains_through() {
        assert!(!is_blocked("notmailinator.com", LIST));
        assert!(!is_blocked("mailinator.com.evil.net", LIST));
        assert!(!is_blocked("gmail.com", LIST));
        assert!(!is_blocked("gmail.com", ""));
    }
}
