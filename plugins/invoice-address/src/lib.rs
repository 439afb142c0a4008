//! The `invoice` address type: an address a company can be invoiced at. It requires the company
//! name and the postal address, checks the Slovak/Czech company ids (IČO, DIČ, IČ DPH) when they
//! are given, and returns the address normalized. Which address types exist and where they are
//! stored is the host's business, not this plugin's.

use crm_users_guest::{Address, AddressType, FieldError, TypeInfo, export_address_type};

struct InvoiceAddress;

impl AddressType for InvoiceAddress {
    fn describe() -> TypeInfo {
        TypeInfo::new("invoice", "Invoice address")
    }

    fn validate(address: Address) -> Result<Address, Vec<FieldError>> {
        let address = normalize(address);
        let errors = check(&address);
        if errors.is_empty() { Ok(address) } else { Err(errors) }
    }

    fn format(address: Address) -> String {
        let labelled = |label: &str, value: &Option<String>| {
            value.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{label}: {v}"))
        };
        let parts = [
            address.company_name.clone(),
            join(" ", [&address.street, &address.number]),
            join(" ", [&address.zip, &address.city]),
            address.country_iso.clone(),
            labelled("IČO", &address.company_id),
            labelled("DIČ", &address.company_tax_id),
            labelled("IČ DPH", &address.company_vat_id),
        ];
        parts
            .into_iter()
            .flatten()
            .map(|part| part.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

export_address_type!(InvoiceAddress);

/// Joins the non-empty parts with `separator`, or `None` when all are empty.
fn join<'a>(separator: &str, parts: impl IntoIterator<Item = &'a Option<String>>) -> Option<String> {
    let joined = parts
        .into_iter()
        .flatten()
        .map(|part| part.trim())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(separator);
    Some(joined).filter(|joined| !joined.is_empty())
}

/// Trims every field, drops empty ones, and puts the ids and the country code in canonical
/// form: ids without spaces, the VAT id and the country code uppercase.
fn normalize(address: Address) -> Address {
    let trimmed = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let compact = |value: Option<String>| {
        value.map(|v| v.chars().filter(|c| !c.is_whitespace()).collect::<String>()).filter(|v| !v.is_empty())
    };
    Address {
        first_name: trimmed(address.first_name),
        last_name: trimmed(address.last_name),
        company_name: trimmed(address.company_name),
        street: trimmed(address.street),
        number: trimmed(address.number),
        zip: trimmed(address.zip),
        city: trimmed(address.city),
        country_iso: trimmed(address.country_iso).map(|iso| iso.to_uppercase()),
        phone_number: trimmed(address.phone_number),
        company_id: compact(address.company_id),
        company_tax_id: compact(address.company_tax_id),
        company_vat_id: compact(address.company_vat_id).map(|vat| vat.to_uppercase()),
    }
}

/// Every rule the normalized address breaks, one error per field.
fn check(address: &Address) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let required = [
        ("company_name", &address.company_name, "Enter the company name"),
        ("street", &address.street, "Enter the street"),
        ("city", &address.city, "Enter the city"),
        ("zip", &address.zip, "Enter the postal code"),
        ("country_iso", &address.country_iso, "Enter the country"),
    ];
    for (field, value, message) in required {
        if value.is_none() {
            errors.push(FieldError::new(field, message));
        }
    }

    let country = address.country_iso.as_deref();
    let country_valid = country.is_some_and(|iso| iso.len() == 2 && iso.bytes().all(|b| b.is_ascii_uppercase()));
    if country.is_some() && !country_valid {
        errors.push(FieldError::new("country_iso", "Use a two-letter ISO country code"));
    }

    if let Some(id) = &address.company_id
        && (id.len() != 8 || !id.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push(FieldError::new("company_id", "IČO must have 8 digits"));
    }

    if let Some(tax_id) = &address.company_tax_id
        && !tax_id.bytes().all(|b| b.is_ascii_digit())
    {
        errors.push(FieldError::new("company_tax_id", "DIČ must contain digits only"));
    }

    if let Some(vat_id) = &address.company_vat_id {
        if !is_vat_id(vat_id) {
            errors.push(FieldError::new(
                "company_vat_id",
                "IČ DPH must be a two-letter country prefix followed by 2 to 12 letters or digits",
            ));
        } else if let Some(iso) = country.filter(|_| country_valid) {
            let expected = vat_prefix(iso);
            if &vat_id[..2] != expected {
                errors.push(FieldError::new(
                    "company_vat_id",
                    format!("IČ DPH must start with {expected}, the address's country"),
                ));
            }
        }
    }
    errors
}

/// `^[A-Z]{2}[0-9A-Z]{2,12}$`.
fn is_vat_id(vat_id: &str) -> bool {
    let bytes = vat_id.as_bytes();
    (4..=14).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The VAT id prefix of a country: its ISO code, except Greece, whose VAT ids start with `EL`.
fn vat_prefix(iso: &str) -> &str {
    if iso == "GR" { "EL" } else { iso }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company() -> Address {
        Address {
            company_name: Some(" ACME s.r.o. ".into()),
            street: Some("Hlavná".into()),
            number: Some("1".into()),
            zip: Some("811 01".into()),
            city: Some("Bratislava".into()),
            country_iso: Some("sk".into()),
            ..Address::default()
        }
    }

    fn fields(result: Result<Address, Vec<FieldError>>) -> Vec<String> {
        result.expect_err("invalid").into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn accepts_and_normalizes_a_complete_address() {
        let address = Address {
            company_id: Some("123 456 78".into()),
            company_tax_id: Some("2020 123456".into()),
            company_vat_id: Some("sk 2020123456".into()),
            ..company()
        };
        let valid = InvoiceAddress::validate(address).expect("valid");
        assert_eq!(valid.company_name.as_deref(), Some("ACME s.r.o."));
        assert_eq!(valid.country_iso.as_deref(), Some("SK"));
        assert_eq!(valid.company_id.as_deref(), Some("12345678"));
        assert_eq!(valid.company_tax_id.as_deref(), Some("2020123456"));
        assert_eq!(valid.company_vat_id.as_deref(), Some("SK2020123456"));
    }

    #[test]
    fn reports_every_missing_required_field() {
        let missing = fields(InvoiceAddress::validate(Address { city: Some("  ".into()), ..Address::default() }));
        assert_eq!(missing, ["company_name", "street", "city", "zip", "country_iso"]);
    }

    #[test]
    fn rejects_malformed_ids() {
        let address = Address {
            company_id: Some("1234567".into()),
            company_tax_id: Some("20-20".into()),
            company_vat_id: Some("S1234".into()),
            ..company()
        };
        assert_eq!(fields(InvoiceAddress::validate(address)), ["company_id", "company_tax_id", "company_vat_id"]);
    }

    #[test]
    fn vat_prefix_must_match_the_country_with_greece_as_el() {
        let czech_vat = Address { company_vat_id: Some("CZ12345678".into()), ..company() };
        assert_eq!(fields(InvoiceAddress::validate(czech_vat)), ["company_vat_id"]);

        let greek = Address { country_iso: Some("GR".into()), company_vat_id: Some("EL123456789".into()), ..company() };
        assert!(InvoiceAddress::validate(greek).is_ok());
    }

    #[test]
    fn formats_company_address_with_labelled_ids() {
        let address = Address {
            company_id: Some("12345678".into()),
            company_vat_id: Some("SK2020123456".into()),
            ..InvoiceAddress::validate(company()).expect("valid")
        };
        assert_eq!(
            InvoiceAddress::format(address),
            "ACME s.r.o., Hlavná 1, 811 01 Bratislava, SK, IČO: 12345678, IČ DPH: SK2020123456"
        );
    }
}
