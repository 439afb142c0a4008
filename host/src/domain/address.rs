//! Addresses, their change requests, address types and countries (REMP's `addresses`,
//! `address_change_requests`, `address_types`, `countries`), with the rules that need no I/O:
//! type keys, field normalization, change detection and REMP's one-line formatting. Which
//! types exist (config, store, plugins) and how plugins validate is the service's business.

use super::{Timestamp, user::UserId};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

pub type AddressId = u64;
pub type ChangeRequestId = u64;

/// Longest address type key (REMP's `address_types.type` is a short varchar).
pub const MAX_TYPE_LEN: usize = 64;
/// Longest address type title (REMP varchar(255)).
pub const MAX_TITLE_LEN: usize = 255;
/// Longest value of one address field (REMP's address columns are varchar(255)).
pub const MAX_FIELD_LEN: usize = 255;
/// REMP's `address_types.sorting` default.
pub const DEFAULT_SORTING: i32 = 100;

/// Whether `key` is a valid address type key: 1 to 64 of lowercase letters, digits, `-`, `_`.
pub fn is_type_key(key: &str) -> bool {
    (1..=MAX_TYPE_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A country of ISO 3166-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    pub id: u32,
    pub iso_code: &'static str,
    pub name: &'static str,
}

/// The shipped list: `id<TAB>iso_code<TAB>name`; its header names source and licence.
const COUNTRIES_TSV: &str = include_str!("../../assets/countries.tsv");

/// Every known country, in id order.
pub fn countries() -> &'static [Country] {
    static LIST: OnceLock<Vec<Country>> = OnceLock::new();
    LIST.get_or_init(|| {
        COUNTRIES_TSV
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let mut cols = line.split('\t');
                let id = cols.next()?.parse().ok()?;
                Some(Country { id, iso_code: cols.next()?, name: cols.next()? })
            })
            .collect()
    })
}

/// The country with this ISO alpha-2 code, compared case-insensitively as REMP's collation does.
pub fn country_by_iso(iso: &str) -> Option<Country> {
    let iso = iso.trim();
    countries().iter().find(|c| c.iso_code.eq_ignore_ascii_case(iso)).copied()
}

pub fn country_by_id(id: u32) -> Option<Country> {
    countries().iter().find(|c| c.id == id).copied()
}

/// The content of an address or a change request; every field optional, as in REMP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub street: Option<String>,
    pub number: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub country_id: Option<u32>,
    pub phone_number: Option<String>,
    pub company_id: Option<String>,
    pub company_tax_id: Option<String>,
    pub company_vat_id: Option<String>,
}

impl AddressFields {
    /// REMP's storage rules: empty values are absent, and whitespace is stripped from the
    /// company id, tax id and VAT id.
    pub fn normalized(self) -> Self {
        let empty_to_none = |v: Option<String>| v.filter(|s| !s.is_empty());
        let compact = |v: Option<String>| {
            v.map(|s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>()).filter(|s| !s.is_empty())
        };
        AddressFields {
            first_name: empty_to_none(self.first_name),
            last_name: empty_to_none(self.last_name),
            company_name: empty_to_none(self.company_name),
            street: empty_to_none(self.street),
            number: empty_to_none(self.number),
            zip: empty_to_none(self.zip),
            city: empty_to_none(self.city),
            country_id: self.country_id,
            phone_number: empty_to_none(self.phone_number),
            company_id: compact(self.company_id),
            company_tax_id: compact(self.company_tax_id),
            company_vat_id: compact(self.company_vat_id),
        }
    }

    /// The text fields by their REMP column names, for length checks and field errors.
    pub fn text_fields(&self) -> [(&'static str, &Option<String>); 11] {
        [
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
            ("company_name", &self.company_name),
            ("street", &self.street),
            ("number", &self.number),
            ("zip", &self.zip),
            ("city", &self.city),
            ("phone_number", &self.phone_number),
            ("company_id", &self.company_id),
            ("company_tax_id", &self.company_tax_id),
            ("company_vat_id", &self.company_vat_id),
        ]
    }

    /// The country, when the id is a known one.
    pub fn country(&self) -> Option<Country> {
        self.country_id.and_then(country_by_id)
    }

    /// REMP's built-in `address_string`: "First Last, Street Number, Zip City, ISO", each
    /// part left out when empty.
    pub fn format(&self) -> String {
        let join = |a: &Option<String>, b: &Option<String>| {
            [a, b].into_iter().flatten().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
        };
        let iso = self.country().map(|c| c.iso_code.to_owned()).unwrap_or_default();
        [join(&self.first_name, &self.last_name), join(&self.street, &self.number), join(&self.zip, &self.city), iso]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An address as stored (REMP `addresses`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: AddressId,
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: String,
    pub is_default: bool,
    pub title: Option<String>,
    #[serde(flatten)]
    pub fields: AddressFields,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl Address {
    /// A new address of `kind` for the user, created now.
    pub fn new(id: AddressId, user_id: UserId, kind: String, fields: AddressFields, at: Timestamp) -> Self {
        Address {
            id,
            user_id,
            kind,
            is_default: false,
            title: None,
            fields,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// REMP's `AddressChangeRequestStatusEnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeRequestStatus {
    New,
    Accepted,
    Rejected,
}

impl ChangeRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeRequestStatus::New => "new",
            ChangeRequestStatus::Accepted => "accepted",
            ChangeRequestStatus::Rejected => "rejected",
        }
    }
}

/// A requested change to an address, or a new address when `address_id` is unset and the
/// request is `new` (REMP `address_change_requests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressChangeRequest {
    pub id: ChangeRequestId,
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: String,
    /// The parent address; set on acceptance when the request created the address.
    pub address_id: Option<AddressId>,
    pub status: ChangeRequestStatus,
    /// The requested values.
    pub fields: AddressFields,
    /// The parent's values when the request was made (REMP's `old_*` columns).
    pub old: AddressFields,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where an address type comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeSource {
    Config,
    Stored,
    Plugin,
}

impl TypeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeSource::Config => "config",
            TypeSource::Stored => "stored",
            TypeSource::Plugin => "plugin",
        }
    }
}

/// An address type (REMP `address_types`: `type` key, `title`, `sorting`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressType {
    #[serde(rename = "type")]
    pub key: String,
    pub title: String,
    pub sorting: i32,
}

/// Why an address field was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why an address, or a change to one, was not accepted. Each maps to one REMP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRefusal {
    UserNotFound,
    TypeNotFound,
    CountryNotFound,
    ParentNotFound,
    /// The type's rules refuse these fields.
    Invalid(Vec<FieldError>),
    /// The type's plugin failed and fails closed: nothing can be checked now.
    TypeUnavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_numbered_from_one_and_found_by_iso_in_any_case() {
        let all = countries();
        assert!(all.len() > 240, "{}", all.len());
        assert!(all.iter().enumerate().all(|(i, c)| c.id as usize == i + 1));
        let sk = country_by_iso("sk").expect("SK");
        assert_eq!((sk.iso_code, sk.name), ("SK", "Slovakia"));
        assert_eq!(country_by_id(sk.id), Some(sk));
        assert!(country_by_iso("XX").is_none());
    }

    #[test]
    fn type_keys_are_short_lowercase_words() {
        assert!(is_type_key("invoice"));
        assert!(is_type_key("crm_test-2"));
        assert!(!is_type_key(""));
        assert!(!is_type_key("Invoice"));
        assert!(!is_type_key("a b"));
        assert!(!is_type_key(&"a".repeat(65)));
    }

    #[test]
    fn normalization_drops_empty_values_and_compacts_company_ids() {
        let fields = AddressFields {
            first_name: Some(String::new()),
            company_id: Some(" 123 456 ".into()),
            company_vat_id: Some("SK 20 20".into()),
            company_tax_id: Some("  ".into()),
            ..Default::default()
        }
        .normalized();
        assert_eq!(fields.first_name, None);
        assert_eq!(fields.company_id.as_deref(), Some("123456"));
        assert_eq!(fields.company_vat_id.as_deref(), Some("SK2020"));
        assert_eq!(fields.company_tax_id, None);
    }

    #[test]
    fn formats_as_remp_skipping_empty_parts() {
        let sk = country_by_iso("SK").map(|c| c.id);
        let full = AddressFields {
            first_name: Some("Jana".into()),
            last_name: Some("Nová".into()),
            street: Some("Hlavná".into()),
            number: Some("1".into()),
            zip: Some("811 01".into()),
            city: Some("Bratislava".into()),
            country_id: sk,
            ..Default::default()
        };
        assert_eq!(full.format(), "Jana Nová, Hlavná 1, 811 01 Bratislava, SK");
        let partial =
            AddressFields { last_name: Some("Nová".into()), city: Some("Košice".into()), ..Default::default() };
        assert_eq!(partial.format(), "Nová, Košice");
    }
}
