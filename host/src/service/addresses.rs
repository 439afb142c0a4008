//! Address use cases: the address type registry (config, store and plugin types), creating an
//! address, requesting a change, accepting and rejecting change requests, listing and
//! formatting. A plugin type's `validate` runs on every create and change of an address of
//! that type, under the plugin's failure policy; its `format` gives `address_string`.

use super::Services;
use crate::domain::{
    Error, Result,
    address::{
        Address, AddressChangeRequest, AddressFields, AddressRefusal, AddressType, ChangeRequestId,
        ChangeRequestStatus, Country, DEFAULT_SORTING, FieldError, MAX_FIELD_LEN, MAX_TITLE_LEN, TypeSource,
        country_by_id, country_by_iso, is_type_key,
    },
    event::DomainEvent,
    now,
    user::{User, UserId},
};
use crate::plugins::{Kind, PluginSet, calls, loader::Plugin, manifest::FailurePolicy};
use crate::store::{Batch, Change, IdSequence};
use std::sync::{Arc, Mutex};

/// An address type as the registry knows it: where it is defined, and the plugin that
/// validates and formats its addresses, if any.
#[derive(Debug, Clone)]
pub struct RegisteredType {
    pub kind: AddressType,
    pub source: TypeSource,
    pub plugin: Option<Arc<Plugin>>,
}

/// A type a plugin describes, with that plugin.
type PluginType = (AddressType, Arc<Plugin>);

/// The types the current plugin set describes, computed once per set: `describe` is a plugin
/// call, too dear to make on every request.
#[derive(Debug, Default)]
pub struct PluginTypeCache {
    /// The set the entry was computed for (kept, so its address cannot be reused).
    entry: Mutex<Option<(Arc<PluginSet>, Vec<PluginType>)>>,
}

/// What an address request carries, as the REMP routes read it.
#[derive(Debug, Clone, Default)]
pub struct AddressRequest {
    pub email: String,
    pub kind: String,
    /// The values; `country_id` is ignored, the country comes from the two fields below.
    pub fields: AddressFields,
    /// ISO alpha-2 code (`country_iso`).
    pub country_iso: Option<String>,
    /// REMP's deprecated `country_id` parameter of `change-address-request`; wins when given.
    pub country_id: Option<String>,
}

/// Shorthand for a use case that may be refused with a REMP answer.
type Refusable<T> = Result<std::result::Result<T, AddressRefusal>>;

impl Services {
    /// Every address type: config first, then stored, then plugin types, each key once and
    /// ordered by `sorting`, then key. A plugin describing a key defined elsewhere still
    /// validates and formats that type's addresses.
    pub async fn address_types(&self) -> Result<Vec<RegisteredType>> {
        let mut out: Vec<RegisteredType> = self
            .config
            .address_types
            .iter()
            .map(|kind| RegisteredType { kind: kind.clone(), source: TypeSource::Config, plugin: None })
            .collect();
        for kind in self.store.stored_address_types().await? {
            if !out.iter().any(|t| t.kind.key == kind.key) {
                out.push(RegisteredType { kind, source: TypeSource::Stored, plugin: None });
            }
        }
        for (kind, plugin) in self.plugin_address_types().await {
            match out.iter_mut().find(|t| t.kind.key == kind.key) {
                Some(existing) => {
                    existing.plugin.get_or_insert(plugin);
                }
                None => out.push(RegisteredType { kind, source: TypeSource::Plugin, plugin: Some(plugin) }),
            }
        }
        out.sort_by(|a, b| a.kind.sorting.cmp(&b.kind.sorting).then_with(|| a.kind.key.cmp(&b.kind.key)));
        Ok(out)
    }

    /// The type with this key, if any source defines it.
    pub async fn address_type(&self, key: &str) -> Result<Option<RegisteredType>> {
        Ok(self.address_types().await?.into_iter().find(|t| t.kind.key == key))
    }

    /// Store a new address type (CLI `address-type add`, `POST /api/address-types`).
    pub async fn add_address_type(&self, key: &str, title: &str, sorting: Option<i32>) -> Result<AddressType> {
        let key = key.trim();
        let title = title.trim();
        if !is_type_key(key) {
            return Err(Error::invalid(
                "invalid_type",
                "type",
                "an address type is 1 to 64 lowercase letters, digits, '-' or '_'",
            ));
        }
        if title.is_empty() || title.chars().count() > MAX_TITLE_LEN {
            return Err(Error::invalid(
                "invalid_title",
                "title",
                "an address type needs a title of 1 to 255 characters",
            ));
        }
        if let Some(existing) = self.address_type(key).await? {
            return Err(Error::Conflict {
                code: "address_type_exists",
                message: format!("Address type '{key}' already exists ({})", existing.source.as_str()),
            });
        }
        let kind =
            AddressType { key: key.to_owned(), title: title.to_owned(), sorting: sorting.unwrap_or(DEFAULT_SORTING) };
        self.store.apply(Batch(vec![Change::InsertAddressType(kind.clone())])).await?;
        Ok(kind)
    }

    /// The current plugin set's address types, highest priority first for a key.
    async fn plugin_address_types(&self) -> Vec<PluginType> {
        let set = self.plugins.current();
        if let Ok(entry) = self.plugin_types.entry.lock()
            && let Some((cached_for, types)) = entry.as_ref()
            && Arc::ptr_eq(cached_for, &set)
        {
            return types.clone();
        }
        let mut types: Vec<PluginType> = Vec::new();
        let mut complete = true;
        for plugin in set.of(Kind::AddressType) {
            match plugin.describe_address_type().await {
                Ok(info) if is_type_key(&info.name) && !info.title.trim().is_empty() => {
                    if types.iter().any(|(t, _)| t.key == info.name) {
                        tracing::warn!(plugin = %plugin.manifest().name, kind = %info.name, "address type described by a plugin of higher priority too; ignored");
                        continue;
                    }
                    let kind = AddressType { key: info.name, title: info.title, sorting: info.sorting };
                    types.push((kind, plugin.clone()));
                }
                Ok(info) => {
                    tracing::warn!(plugin = %plugin.manifest().name, kind = %info.name, "plugin describes an address type with an invalid key or no title; ignored");
                }
                Err(failure) => {
                    // Not cached: the next request asks again.
                    complete = false;
                    tracing::warn!(error = %failure, "address type plugin could not describe its type; left out");
                }
            }
        }
        if complete && let Ok(mut entry) = self.plugin_types.entry.lock() {
            *entry = Some((set, types.clone()));
        }
        types
    }

    /// The type's rules on `fields` (whose country is set): lengths, then the plugin's
    /// validation (which may normalize), under its failure policy.
    async fn apply_type_rules(&self, kind: &RegisteredType, fields: AddressFields) -> Refusable<AddressFields> {
        let fields = fields.normalized();
        if let Some(refusal) = too_long(&fields) {
            return Ok(Err(refusal));
        }
        let Some(plugin) = &kind.plugin else {
            return Ok(Ok(fields));
        };
        match plugin.validate_address(&to_wit(&fields)).await {
            Ok(verdict) => Ok(accept_plugin_verdict(fields.country_id, verdict)),
            Err(failure) => match plugin.failure_policy(Kind::AddressType) {
                FailurePolicy::Closed => {
                    tracing::warn!(error = %failure, "address type plugin failed; address refused (fails closed)");
                    Ok(Err(AddressRefusal::TypeUnavailable(kind.kind.key.clone())))
                }
                FailurePolicy::Open => {
                    tracing::warn!(error = %failure, "address type plugin failed; address kept as given (fails open)");
                    Ok(Ok(fields))
                }
            },
        }
    }

    /// User, type and country of a request, checked in REMP's order.
    async fn resolve(&self, input: &AddressRequest) -> Refusable<(User, RegisteredType, Country)> {
        let Some(user) = self.store.user_by_email(&input.email).await?.filter(|u| !u.is_deleted()) else {
            return Ok(Err(AddressRefusal::UserNotFound));
        };
        let Some(kind) = self.address_type(&input.kind).await? else {
            return Ok(Err(AddressRefusal::TypeNotFound));
        };
        let found = match input.country_iso.as_deref().filter(|s| !s.is_empty()) {
            Some(iso) => match country_by_iso(iso) {
                Some(c) => Some(c),
                None => return Ok(Err(AddressRefusal::CountryNotFound)),
            },
            None => None,
        };
        let by_id = match input.country_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => match raw.parse::<u32>().ok().and_then(country_by_id) {
                Some(c) => Some(c),
                None => return Ok(Err(AddressRefusal::CountryNotFound)),
            },
            None => None,
        };
        let country = by_id.or(found).unwrap_or(self.config.default_country);
        Ok(Ok((user, kind, country)))
    }

    /// `users/address`: a change request without a parent, accepted at once, which creates a
    /// new address (always, even when one of that type exists).
    pub async fn create_address(&self, input: AddressRequest) -> Refusable<Address> {
        let (user, kind, country) = match self.resolve(&input).await? {
            Ok(r) => r,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let fields = AddressFields { country_id: Some(country.id), ..input.fields };
        let fields = match self.apply_type_rules(&kind, fields).await? {
            Ok(f) => f,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let request_id = self.store.reserve_id(IdSequence::AddressChangeRequest).await?;
        let address_id = self.store.reserve_id(IdSequence::Address).await?;
        let at = now();
        let address = Address::new(address_id, user.id, kind.kind.key.clone(), fields.clone(), at);
        let request = AddressChangeRequest {
            id: request_id,
            user_id: user.id,
            kind: kind.kind.key,
            address_id: Some(address_id),
            status: ChangeRequestStatus::Accepted,
            fields,
            old: AddressFields::default(),
            created_at: at,
            updated_at: at,
        };
        let batch = Batch(vec![
            Change::PutAddressChangeRequest { request: Box::new(request), if_status: None },
            Change::PutAddress(Box::new(address.clone())),
        ]);
        self.store.apply(batch).await?;
        // REMP emits NewAddressEvent twice here (acceptRequest and the handler); once is enough.
        self.events.publish_all([
            DomainEvent::NewAddressChangeRequest { request_id, user_id: user.id },
            DomainEvent::NewAddress { address_id, user_id: user.id, admin: false },
        ]);
        Ok(Ok(address))
    }

    /// `users/change-address-request`: a `new` request against the newest address of the
    /// type, or `None` when the values equal the parent's.
    pub async fn request_address_change(&self, input: AddressRequest) -> Refusable<Option<AddressChangeRequest>> {
        let (user, kind, country) = match self.resolve(&input).await? {
            Ok(r) => r,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let Some(parent) = self.newest_address(user.id, &kind.kind.key).await? else {
            return Ok(Err(AddressRefusal::ParentNotFound));
        };
        let fields = AddressFields { country_id: Some(country.id), ..input.fields };
        let fields = match self.apply_type_rules(&kind, fields).await? {
            Ok(f) => f,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if fields == parent.fields {
            return Ok(Ok(None));
        }
        let id = self.store.reserve_id(IdSequence::AddressChangeRequest).await?;
        let at = now();
        let request = AddressChangeRequest {
            id,
            user_id: user.id,
            kind: kind.kind.key,
            address_id: Some(parent.id),
            status: ChangeRequestStatus::New,
            fields,
            old: parent.fields,
            created_at: at,
            updated_at: at,
        };
        self.store
            .apply(Batch(vec![Change::PutAddressChangeRequest { request: Box::new(request.clone()), if_status: None }]))
            .await?;
        self.events.publish(DomainEvent::NewAddressChangeRequest { request_id: id, user_id: user.id });
        Ok(Ok(Some(request)))
    }

    /// REMP's `acceptRequest`: an accepted request is returned as it is, a rejected one cannot
    /// be accepted (`change_request_rejected`); a new one changes its parent address or
    /// creates the address. The type's rules run again on the values.
    pub async fn accept_address_change_request(
        &self,
        id: ChangeRequestId,
        admin: bool,
    ) -> Refusable<AddressChangeRequest> {
        let mut request = self.change_request(id).await?;
        match request.status {
            ChangeRequestStatus::Accepted => return Ok(Ok(request)),
            ChangeRequestStatus::Rejected => return Err(rejected_conflict(id)),
            ChangeRequestStatus::New => {}
        }
        let kind = match self.address_type(&request.kind).await? {
            Some(kind) => kind,
            // The type was removed from the config since; its addresses still change.
            None => RegisteredType {
                kind: AddressType { key: request.kind.clone(), title: request.kind.clone(), sorting: DEFAULT_SORTING },
                source: TypeSource::Stored,
                plugin: None,
            },
        };
        let fields = match self.apply_type_rules(&kind, request.fields.clone()).await? {
            Ok(f) => f,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let at = now();
        let (address, event) = match request.address_id {
            Some(parent_id) => {
                let mut parent = self
                    .store
                    .address(parent_id)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("Address {parent_id} not found")))?;
                parent.fields = fields.clone();
                parent.updated_at = at;
                let event = DomainEvent::AddressChanged { address_id: parent.id, user_id: parent.user_id, admin };
                (parent, event)
            }
            None => {
                let address_id = self.store.reserve_id(IdSequence::Address).await?;
                let address = Address::new(address_id, request.user_id, request.kind.clone(), fields.clone(), at);
                (address, DomainEvent::NewAddress { address_id, user_id: request.user_id, admin })
            }
        };
        request.address_id = Some(address.id);
        request.fields = fields;
        request.status = ChangeRequestStatus::Accepted;
        request.updated_at = at;
        let batch = Batch(vec![
            Change::PutAddressChangeRequest {
                request: Box::new(request.clone()),
                if_status: Some(ChangeRequestStatus::New),
            },
            Change::PutAddress(Box::new(address)),
        ]);
        match self.store.apply(batch).await {
            Ok(_) => {}
            // Another accept or reject won the race; answer as if it had come first.
            Err(Error::Conflict { code: "change_request_changed", .. }) => {
                let now_stored = self.change_request(id).await?;
                return match now_stored.status {
                    ChangeRequestStatus::Accepted => Ok(Ok(now_stored)),
                    _ => Err(rejected_conflict(id)),
                };
            }
            Err(e) => return Err(e),
        }
        self.events.publish(event);
        Ok(Ok(request))
    }

    /// REMP's `rejectRequest`. Rejecting a rejected request returns it; an accepted one has
    /// changed its address already and cannot be rejected (`change_request_accepted`).
    pub async fn reject_address_change_request(&self, id: ChangeRequestId) -> Result<AddressChangeRequest> {
        let mut request = self.change_request(id).await?;
        match request.status {
            ChangeRequestStatus::Rejected => return Ok(request),
            ChangeRequestStatus::Accepted => return Err(accepted_conflict(id)),
            ChangeRequestStatus::New => {}
        }
        request.status = ChangeRequestStatus::Rejected;
        request.updated_at = now();
        let batch = Batch(vec![Change::PutAddressChangeRequest {
            request: Box::new(request.clone()),
            if_status: Some(ChangeRequestStatus::New),
        }]);
        match self.store.apply(batch).await {
            Ok(_) => Ok(request),
            Err(Error::Conflict { code: "change_request_changed", .. }) => {
                let now_stored = self.change_request(id).await?;
                match now_stored.status {
                    ChangeRequestStatus::Rejected => Ok(now_stored),
                    _ => Err(accepted_conflict(id)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn change_request(&self, id: ChangeRequestId) -> Result<AddressChangeRequest> {
        self.store
            .address_change_request(id)
            .await?
            .ok_or_else(|| Error::NotFound("Address change request not found".into()))
    }

    /// The user's addresses that are not deleted, of one type when given, in id order.
    pub async fn addresses(&self, user_id: UserId, kind: Option<&str>) -> Result<Vec<Address>> {
        Ok(self.store.addresses_of_user(user_id, kind).await?.into_iter().filter(|a| !a.is_deleted()).collect())
    }

    /// The most recently updated address of a type: REMP's parent of a change request.
    async fn newest_address(&self, user_id: UserId, kind: &str) -> Result<Option<Address>> {
        Ok(self.addresses(user_id, Some(kind)).await?.into_iter().max_by_key(|a| (a.updated_at, a.id)))
    }

    /// `address_string` of each address: its type's plugin formats it, else REMP's built-in
    /// format. A failing plugin never fails a listing: the built-in format stands in.
    pub async fn format_addresses(&self, addresses: &[Address]) -> Result<Vec<String>> {
        let types = self.address_types().await?;
        let mut out = Vec::with_capacity(addresses.len());
        for address in addresses {
            let plugin = types.iter().find(|t| t.kind.key == address.kind).and_then(|t| t.plugin.as_ref());
            let text = match plugin {
                Some(plugin) => match plugin.format_address(&to_wit(&address.fields)).await {
                    Ok(text) => text,
                    Err(failure) => {
                        tracing::warn!(error = %failure, "address type plugin could not format; built-in format used");
                        address.fields.format()
                    }
                },
                None => address.fields.format(),
            };
            out.push(text);
        }
        Ok(out)
    }
}

fn rejected_conflict(id: ChangeRequestId) -> Error {
    Error::Conflict {
        code: "change_request_rejected",
        message: format!("Address change request {id} was rejected and cannot be accepted"),
    }
}

fn accepted_conflict(id: ChangeRequestId) -> Error {
    Error::Conflict {
        code: "change_request_accepted",
        message: format!("Address change request {id} was accepted and cannot be rejected"),
    }
}

/// What the host makes of an address type's verdict, trusting none of it: a normalized address
/// has its country (`country_iso`, else the one given, `given_country`) resolved and the
/// length limits applied again, since a plugin may lengthen fields.
pub fn accept_plugin_verdict(
    given_country: Option<u32>,
    verdict: std::result::Result<calls::Address, Vec<calls::FieldError>>,
) -> std::result::Result<AddressFields, AddressRefusal> {
    let valid = match verdict {
        Ok(valid) => valid,
        Err(errors) => {
            return Err(AddressRefusal::Invalid(
                errors.into_iter().map(|e| FieldError { field: e.field, message: e.message }).collect(),
            ));
        }
    };
    let country_id = match valid.country_iso.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => given_country,
        Some(iso) => match country_by_iso(iso) {
            Some(country) => Some(country.id),
            None => {
                return Err(AddressRefusal::Invalid(vec![FieldError {
                    field: "country_iso".into(),
                    message: "Country not found".into(),
                }]));
            }
        },
    };
    let normalized = AddressFields { country_id, ..from_wit(valid) }.normalized();
    too_long(&normalized).map_or(Ok(normalized), Err)
}

/// Field errors for values longer than a column holds.
fn too_long(fields: &AddressFields) -> Option<AddressRefusal> {
    let errors: Vec<FieldError> = fields
        .text_fields()
        .into_iter()
        .filter(|(_, v)| v.as_ref().is_some_and(|v| v.chars().count() > MAX_FIELD_LEN))
        .map(|(field, _)| FieldError {
            field: field.to_owned(),
            message: format!("Must be at most {MAX_FIELD_LEN} characters"),
        })
        .collect();
    (!errors.is_empty()).then_some(AddressRefusal::Invalid(errors))
}

fn to_wit(fields: &AddressFields) -> calls::Address {
    calls::Address {
        first_name: fields.first_name.clone(),
        last_name: fields.last_name.clone(),
        company_name: fields.company_name.clone(),
        street: fields.street.clone(),
        number: fields.number.clone(),
        zip: fields.zip.clone(),
        city: fields.city.clone(),
        country_iso: fields.country().map(|c| c.iso_code.to_owned()),
        phone_number: fields.phone_number.clone(),
        company_id: fields.company_id.clone(),
        company_tax_id: fields.company_tax_id.clone(),
        company_vat_id: fields.company_vat_id.clone(),
    }
}

/// The plugin's answer, without the country (the caller maps `country_iso`).
fn from_wit(a: calls::Address) -> AddressFields {
    AddressFields {
        first_name: a.first_name,
        last_name: a.last_name,
        company_name: a.company_name,
        street: a.street,
        number: a.number,
        zip: a.zip,
        city: a.city,
        country_id: None,
        phone_number: a.phone_number,
        company_id: a.company_id,
        company_tax_id: a.company_tax_id,
        company_vat_id: a.company_vat_id,
    }
}
