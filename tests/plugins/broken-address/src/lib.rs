//! Hostile fixture: the `broken` address type. `describe` answers, but `validate` and `format`
//! panic, which traps the call, so tests see the host apply the failure policy to addresses.

use crm_users_guest::{Address, AddressType, FieldError, TypeInfo, export_address_type};

struct BrokenAddress;

impl AddressType for BrokenAddress {
    fn describe() -> TypeInfo {
        TypeInfo::new("broken", "Broken address")
    }

    fn validate(_address: Address) -> Result<Address, Vec<FieldError>> {
        panic!("broken-address fixture: validate always panics");
    }

    fn format(_address: Address) -> String {
        panic!("broken-address fixture: format always panics");
    }
}

export_address_type!(BrokenAddress);
