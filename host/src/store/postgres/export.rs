//! Reading every stored record back out as [`Imported`] values (`Store::export`), streamed
//! row by row, in the order the sled backend's export has: kinds in replay order, and within
//! a kind the order of sled's keys (ids ascending, digests and names bytewise, length-prefixed
//! names shorter first). The same data exported from either backend is the same file. The
//! caller reads in one repeatable-read transaction, so the export is one snapshot.

use super::schema::SEQUENCES;
use super::{db, id_from, record_of, text_of};
use crate::domain::{Error, Result, Timestamp};
use crate::store::Imported;
use futures_util::{StreamExt, pin_mut};
use serde::de::DeserializeOwned;
use tokio_postgres::Row;

type Sink<'a> = &'a mut (dyn FnMut(Imported) -> Result<()> + Send);

/// Hand `each` every row of `sql` as it arrives.
async fn each_row(
    client: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    mut each: impl FnMut(&Row) -> Result<()>,
) -> Result<()> {
    let statement = client.prepare_cached(sql).await.map_err(db)?;
    let rows = client.query_raw(&statement, std::iter::empty::<i64>()).await.map_err(db)?;
    pin_mut!(rows);
    while let Some(row) = rows.next().await {
        each(&row.map_err(db)?)?;
    }
    Ok(())
}

/// Every `record` of `sql`, parsed, wrapped and handed to `sink`.
async fn each_record<T: DeserializeOwned>(
    client: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    sink: Sink<'_>,
    wrap: impl Fn(T) -> Imported,
) -> Result<()> {
    each_row(client, sql, |row| sink(wrap(record_of(row)?))).await
}

pub(super) async fn export_all(client: &deadpool_postgres::Transaction<'_>, sink: Sink<'_>) -> Result<()> {
    each_row(client, "SELECT name, key FROM server_secrets ORDER BY name", |row| {
        let name = text_of(row.get(0));
        let key = <[u8; 32]>::try_from(row.get::<_, &[u8]>(1))
            .map_err(|_| Error::Storage(anyhow::anyhow!("corrupt secret {name}")))?;
        sink(Imported::ServerSecret { name, key })
    })
    .await?;
    each_record(client, "SELECT record FROM users ORDER BY id", sink, |u| Imported::User(Box::new(u))).await?;
    each_record(client, "SELECT record FROM groups ORDER BY id", sink, Imported::Group).await?;
    each_record(client, "SELECT record FROM roles ORDER BY id", sink, Imported::Role).await?;
    each_record(client, "SELECT record FROM address_types ORDER BY key", sink, Imported::AddressType).await?;
    each_record(client, "SELECT record FROM api_tokens ORDER BY digest", sink, Imported::ApiToken).await?;
    each_record(client, "SELECT record FROM device_tokens ORDER BY digest", sink, Imported::DeviceToken).await?;
    each_record(client, "SELECT record FROM user_meta ORDER BY user_id, key", sink, Imported::Meta).await?;
    each_record(client, "SELECT record FROM access_tokens ORDER BY digest", sink, Imported::AccessToken).await?;
    each_record(client, "SELECT record FROM autologin_tokens ORDER BY digest", sink, Imported::AutologinToken).await?;
    let sql = "SELECT record FROM connected_accounts ORDER BY octet_length(kind), kind, external_id";
    each_record(client, sql, sink, Imported::ConnectedAccount).await?;
    each_row(client, "SELECT user_id, group_id, since FROM memberships ORDER BY user_id, group_id", |row| {
        let since: Timestamp = row.get(2);
        sink(Imported::Membership { user_id: id_from(row.get(0))?, group_id: id_from(row.get(1))?, since })
    })
    .await?;
    let sql = "SELECT user_id, array_agg(role_id ORDER BY role_id) FROM user_roles GROUP BY user_id ORDER BY user_id";
    each_row(client, sql, |row| {
        let roles = row.get::<_, Vec<i64>>(1).into_iter().map(id_from).collect::<Result<Vec<_>>>()?;
        sink(Imported::UserRoles { user_id: id_from(row.get(0))?, roles })
    })
    .await?;
    each_record(client, "SELECT record FROM addresses ORDER BY id", sink, |a| Imported::Address(Box::new(a))).await?;
    let sql = "SELECT record FROM address_change_requests ORDER BY id";
    each_record(client, sql, sink, |r| Imported::AddressChangeRequest(Box::new(r))).await?;
    each_record(client, "SELECT record FROM login_attempts ORDER BY id", sink, Imported::LoginAttempt).await?;
    let sql = "SELECT record FROM registration_attempts ORDER BY id";
    each_record(client, sql, sink, Imported::RegistrationAttempt).await?;
    each_record(client, "SELECT record FROM password_changes ORDER BY id", sink, Imported::PasswordChange).await?;
    each_row(client, "SELECT plugin, key, value FROM plugin_kv ORDER BY octet_length(plugin), plugin, key", |row| {
        sink(Imported::PluginKv { plugin: text_of(row.get(0)), key: text_of(row.get(1)), value: row.get(2) })
    })
    .await?;
    each_row(client, "SELECT scope, key, at FROM idempotency_keys ORDER BY scope, key", |row| {
        let at: Timestamp = row.get(2);
        sink(Imported::IdempotencyKey { scope: text_of(row.get(0)), key: text_of(row.get(1)), at })
    })
    .await?;
    // A sequence that never handed out an id is not reported, as sled has no entry for it.
    for name in SEQUENCES {
        each_row(client, &format!("SELECT last_value FROM seq_{name} WHERE is_called"), |row| {
            sink(Imported::Sequence { name: (*name).to_owned(), last: id_from(row.get(0))? })
        })
        .await?;
    }
    Ok(())
}
