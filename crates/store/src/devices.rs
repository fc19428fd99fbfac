//! Devices (cameras, gates) and their API keys.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::garage::with_pool;
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DeviceId(pub i64);

/// A device's name as an operator types it: 1–64 of `A–Z a–z 0–9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceName(String);

#[derive(Debug, thiserror::Error)]
#[error("invalid device name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-'")]
pub struct InvalidDeviceName(String);

impl DeviceName {
    pub fn parse(name: &str) -> Result<DeviceName, InvalidDeviceName> {
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok { Ok(DeviceName(name.to_owned())) } else { Err(InvalidDeviceName(name.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an API key may do: a device posts reads and frames; an operator runs the garage day to
/// day (reviews, refunds, barriers); an admin is an operator who may also change its rules
/// (tariff, lists, permits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Device,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether the key may do what an operator does (admins may).
    pub fn operates(self) -> bool {
        matches!(self, Role::Operator | Role::Admin)
    }

    /// The stored `role` column and `admin` flag.
    fn columns(self) -> (&'static str, bool) {
        match self {
            Role::Device => ("device", false),
            Role::Operator => ("operator", false),
            Role::Admin => ("operator", true),
        }
    }

    fn from_columns(text: &str, admin: bool) -> Result<Role, StoreError> {
        match (text, admin) {
            ("device", false) => Ok(Role::Device),
            ("operator", false) => Ok(Role::Operator),
            ("operator", true) => Ok(Role::Admin),
            (other, _) => Err(StoreError::Corrupt(format!("unknown key role {other:?} (admin {admin})"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Device {
    pub id: DeviceId,
    pub name: DeviceName,
    pub role: Role,
    /// The first characters of the key, so an operator can tell keys apart without the secret.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A device's secret, shown once when the device is added. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}…)", &self.0[..KEY_PREFIX_LEN])
    }
}

const KEY_PREFIX_LEN: usize = 12;

impl ApiKey {
    fn generate() -> ApiKey {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        ApiKey(format!("valet_{}", hex::encode(secret)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn prefix(&self) -> String {
        self.0[..KEY_PREFIX_LEN].to_owned()
    }
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: i64,
    name: String,
    role: String,
    admin: bool,
    key_prefix: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;
    fn try_from(row: DeviceRow) -> Result<Device, StoreError> {
        Ok(Device {
            id: DeviceId(row.id),
            name: DeviceName(row.name),
            role: Role::from_columns(&row.role, row.admin)?,
            key_prefix: row.key_prefix,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

impl Store {
    /// Registers a device and returns its key; the key's plain text is not kept anywhere.
    pub async fn add_device(&self, name: &DeviceName, now: DateTime<Utc>) -> Result<(Device, ApiKey), StoreError> {
        self.add_key(name, Role::Device, now).await
    }

    /// Registers a device or an operator under `name` and returns its key, shown this once.
    pub async fn add_key(
        &self,
        name: &DeviceName,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(Device, ApiKey), StoreError> {
        let key = ApiKey::generate();
        let inserted: Result<DeviceRow, sqlx::Error> = with_pool!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO devices (name, role, admin, key_prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING id, name, role, admin, key_prefix, created_at, revoked_at",
            )
            .bind(name.as_str())
            .bind(role.columns().0)
            .bind(role.columns().1)
            .bind(key.prefix())
            .bind(key_hash(key.expose()))
            .bind(now)
            .fetch_one(pool)
            .await
        });
        let row = inserted.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::DuplicateDevice(name.as_str().to_owned())
            }
            _ => StoreError::Database(e),
        })?;
        Ok((row.try_into()?, key))
    }

    /// The live (not revoked) device holding `key`, if any.
    pub async fn device_by_key(&self, key: &str) -> Result<Option<Device>, StoreError> {
        let row: Option<DeviceRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, role, admin, key_prefix, created_at, revoked_at FROM devices
                 WHERE key_hash = $1 AND revoked_at IS NULL",
            )
            .bind(key_hash(key))
            .fetch_optional(pool)
            .await?
        });
        row.map(Device::try_from).transpose()
    }

    pub async fn devices(&self) -> Result<Vec<Device>, StoreError> {
        let rows: Vec<DeviceRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, role, admin, key_prefix, created_at, revoked_at FROM devices ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Device::try_from).collect()
    }

    /// Revokes a device's key at once; returns whether a live device of that name existed.
    pub async fn revoke_device(&self, name: &DeviceName, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let revoked = with_pool!(self, |pool| {
            sqlx::query("UPDATE devices SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(name.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(revoked == 1)
    }

    /// Opens a dashboard login for the operator `name` if `key` is that operator's live key:
    /// returns the login's token (for the cookie), shown this once, valid until `until`.
    pub async fn open_login(
        &self,
        name: &str,
        key: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<(Device, ApiKey)>, StoreError> {
        let Some(device) = self.device_by_key(key).await? else { return Ok(None) };
        if device.name.as_str() != name || !device.role.operates() {
            return Ok(None);
        }
        let token = ApiKey::generate();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO operator_logins (token_hash, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(key_hash(token.expose()))
            .bind(device.id.0)
            .bind(now)
            .bind(until)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(Some((device, token)))
    }

    /// The operator whose login `token` is, while it has not lapsed and their key is not revoked.
    pub async fn operator_by_login(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Device>, StoreError> {
        let row: Option<DeviceRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT d.id, d.name, d.role, d.admin, d.key_prefix, d.created_at, d.revoked_at
                 FROM operator_logins l JOIN devices d ON d.id = l.device_id
                 WHERE l.token_hash = $1 AND l.expires_at > $2 AND d.revoked_at IS NULL AND d.role = 'operator'",
            )
            .bind(key_hash(token))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(Device::try_from).transpose()
    }

    /// Ends a login (signing out); unknown tokens are ignored.
    pub async fn close_login(&self, token: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM operator_logins WHERE token_hash = $1")
                .bind(key_hash(token))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
