//! One car at a time: [`GarageStore::lock_plate`] holds a lock named by a plate's matching key
//! while a gate looks for the car's open stay and opens one, so two reads of the same car arriving
//! together (two replicas' passages of one camera, a camera's retry landing on another gate pod)
//! cannot both find none and both open one.
//!
//! On PostgreSQL the lock is a session advisory lock (`pg_try_advisory_lock`, retried) on a
//! connection the [`PlateLock`] holds, so it holds across every gate replica on the database; its key is the
//! first 8 bytes of the plate's keyed digest, so `pg_locks` shows no plate. On SQLite, whose
//! deployments are one process, it is an in-process lock, striped by the same digest.
//!
//! Invariant: a lock is never leaked. [`PlateLock::release`] unlocks; a lock dropped unreleased
//! (an error, a panic, a cancelled request) closes its connection instead, which ends the
//! database session and every lock it held.

use std::sync::{Arc, LazyLock};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Postgres};
use valet_garage::Plate;

use super::{GarageStore, Pool};
use crate::StoreError;

/// How long a gate waits before trying a held PostgreSQL plate lock again: the holder is deciding one
/// car's entry, a few milliseconds.
const RETRY: std::time::Duration = std::time::Duration::from_millis(5);

/// Stripes of the in-process lock: plates whose digests share one wait for each other, briefly.
const STRIPES: usize = 64;

static LOCAL: LazyLock<Vec<Arc<tokio::sync::Mutex<()>>>> =
    LazyLock::new(|| (0..STRIPES).map(|_| Arc::new(tokio::sync::Mutex::new(()))).collect());

/// A held plate lock; see the module's invariant.
#[derive(Debug)]
pub struct PlateLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    Local { _guard: tokio::sync::OwnedMutexGuard<()> },
    Postgres { connection: Option<PoolConnection<Postgres>>, key: i64 },
}

impl GarageStore {
    /// Waits for and takes the lock of `plate`'s matching key.
    pub async fn lock_plate(&self, plate: &Plate) -> Result<PlateLock, StoreError> {
        let digest = self.plate_digest(plate);
        let bytes = hex::decode(&digest.as_str()[..16]).expect("a digest is hex");
        let key = i64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        let held = match &self.pool {
            Pool::Sqlite(_) => {
                let stripe = Arc::clone(&LOCAL[(key as u64 % STRIPES as u64) as usize]);
                Held::Local { _guard: stripe.lock_owned().await }
            }
            Pool::Postgres(pool) => {
                // The lock owns the connection before asking, so a caller that gives up waiting
                // (a cancelled request) drops it and closes the session: nothing is left waiting
                // in the database to take the lock later for nobody. Trying rather than blocking
                // keeps the server side idle between tries, so a closed session ends at once.
                let mut lock = PlateLock { held: Held::Postgres { connection: Some(pool.acquire().await?), key } };
                let Held::Postgres { connection: Some(connection), .. } = &mut lock.held else { unreachable!() };
                loop {
                    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                        .bind(key)
                        .fetch_one(&mut **connection)
                        .await?;
                    if taken {
                        return Ok(lock);
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        Ok(PlateLock { held })
    }
}

impl PlateLock {
    /// Unlocks, and gives the connection back to the pool.
    pub async fn release(mut self) -> Result<(), StoreError> {
        if let Held::Postgres { connection, key } = &mut self.held
            && let Some(mut held) = connection.take()
            && let Err(e) = sqlx::query("SELECT pg_advisory_unlock($1)").bind(*key).execute(&mut *held).await
        {
            // Unsure whether it unlocked: close the session, which surely does.
            let _ = held.detach().close().await;
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for PlateLock {
    fn drop(&mut self) {
        if let Held::Postgres { connection, .. } = &mut self.held
            && let Some(held) = connection.take()
        {
            // Not released: the connection leaves the pool and closes, ending its session's locks.
            drop(held.detach());
        }
    }
}
