//! Fixture: the `shouting` address type. It accepts every address with all fields in
//! uppercase and formats it as the non-empty fields joined by ` | `, so tests can see that
//! both the plugin's normalization and its formatting were applied.

use crm_users_guest::{Address, AddressType, FieldError, TypeInfo, export_address_type};

struct UppercaseAddress;

impl AddressType for UppercaseAddress {
    fn describe() -> TypeInfo {
        TypeInfo::new("shouting", "Shouting address")
    }

    fn validate(address: Address) -> Result<Address, Vec<FieldError>> {
        let upper = |value: Option<String>| value.map(|v| v.to_uppercase());
        Ok(Address {
            first_name: upper(address.first_name),
            last_name: upper(address.last_name),
            company_name: upper(address.company_name),
            street: upper(address.street),
            number: upper(address.number),
            zip: upper(address.zip),
            city: upper(address.city),
            country_iso: upper(address.country_iso),
            phone_number: upper(address.phone_number),
            company_id: upper(address.company_id),
            company_tax_id: upper(address.company_tax_id),
            company_vat_id: upper(address.company_vat_id),
        })
    }

    fn format(address: Address) -> String {
        [
            address.first_name,
            address.last_name,
            address.company_name,
            address.street,
            address.number,
            address.zip,
            address.city,
            address.country_iso,
            address.phone_number,
            address.company_id,
            address.company_tax_id,
            address.company_vat_id,
        ]
        .into_iter()
        .flatten()
        .filter(|field| !field.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
    }
}

export_address_type!(UppercaseAddress);
