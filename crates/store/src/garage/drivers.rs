//! Signed-up drivers and their plates: register, add a plate, find by plate, and sign in again
//! with a plate and the account's recovery code (kept only as its SHA-256, like tokens).

use chrono::{DateTime, Utc};
use valet_garage::{Driver, DriverId, PaymentMethodToken, Plate, RecoveryCode};

use super::access::token_hash;
use super::{BeginWrite, GarageStore, parse_column, with_pool};
use crate::StoreError;

/// One driver row joined with one of its plates (none for a driver without plates).
type DriverPlateRow = (String, String, Option<String>);

impl GarageStore {
    /// Stores a new driver with the plates already on the account, all or nothing, without a
    /// recovery code (a pay-by-link payer's account, which nobody signs in to).
    pub async fn register_driver(&self, driver: &Driver, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.insert_driver(driver, None, at).await
    }

    /// Stores a new driver, as [`register_driver`](Self::register_driver), with the hash of the
    /// recovery code they were shown.
    pub async fn register_driver_with_recovery(
        &self,
        driver: &Driver,
        code: &RecoveryCode,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.insert_driver(driver, Some(code), at).await
    }

    async fn insert_driver(
        &self,
        driver: &Driver,
        code: Option<&RecoveryCode>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO drivers (id, payment_method, created_at, recovery_code_hash) VALUES ($1, $2, $3, $4)",
            )
            .bind(driver.id.to_string())
            .bind(driver.payment_method.as_str())
            .bind(at)
            .bind(code.map(|c| token_hash(c.canonical())))
            .execute(&mut *tx)
            .await?;
            for plate in driver.plates() {
                sqlx::query(
                    "INSERT INTO driver_plates (driver_id, plate_display, plate_hmac, added_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(driver.id.to_string())
                .bind(plate.display())
                .bind(self.plate_digest(plate).as_str())
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(|e| plate_taken(e, plate))?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Adds `plate` to a driver's account. A plate belongs to one account at most: another
    /// account holding the same spelling is [`StoreError::PlateTaken`].
    pub async fn add_driver_plate(&self, driver: DriverId, plate: &Plate, at: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO driver_plates (driver_id, plate_display, plate_hmac, added_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(driver.to_string())
            .bind(plate.display())
            .bind(self.plate_digest(plate).as_str())
            .bind(at)
            .execute(pool)
            .await
            .map_err(|e| plate_taken(e, plate))?;
        });
        Ok(())
    }

    pub async fn driver(&self, id: DriverId) -> Result<Option<Driver>, StoreError> {
        let rows: Vec<DriverPlateRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT d.id, d.payment_method, p.plate_display
                 FROM drivers d LEFT JOIN driver_plates p ON p.driver_id = d.id
                 WHERE d.id = $1 ORDER BY p.plate_display",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(drivers_from_rows(rows)?.pop())
    }

    /// Drivers with a plate that has `plate`'s matching key: the exact spelling or a confusable
    /// one. More than one means the gate must decide (or ask a person) which car this is.
    pub async fn drivers_by_plate(&self, plate: &Plate) -> Result<Vec<Driver>, StoreError> {
        let rows: Vec<DriverPlateRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT d.id, d.payment_method, p.plate_display
                 FROM drivers d JOIN driver_plates p ON p.driver_id = d.id
                 WHERE d.id IN (SELECT driver_id FROM driver_plates WHERE plate_hmac = $1)
                 ORDER BY d.id, p.plate_display",
            )
            .bind(self.plate_digest(plate).as_str())
            .fetch_all(pool)
            .await?
        });
        drivers_from_rows(rows)
    }
}

impl GarageStore {
    /// Signs in with a plate on the account and its recovery code, and replaces the code with
    /// `next` in the same statement, so a code signs in once: of two sign-ins racing with one
    /// code, one gets the driver and the other `None`. `None` too for an unknown plate, a wrong
    /// code, or a code of another account; the caller cannot tell which, and neither can theirs.
    pub async fn redeem_recovery_code(
        &self,
        plate: &Plate,
        code: &RecoveryCode,
        next: &RecoveryCode,
    ) -> Result<Option<DriverId>, StoreError> {
        let id: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE drivers SET recovery_code_hash = $3
                 WHERE recovery_code_hash = $2
                   AND id IN (SELECT driver_id FROM driver_plates WHERE plate_hmac = $1)
                 RETURNING id",
            )
            .bind(self.plate_digest(plate).as_str())
            .bind(token_hash(code.canonical()))
            .bind(token_hash(next.canonical()))
            .fetch_optional(pool)
            .await?
        });
        id.map(|id| parse_column("driver id", DriverId::parse(&id))).transpose()
    }

    /// Gives a driver a new recovery code, replacing any old one (which stops working).
    pub async fn replace_recovery_code(&self, driver: DriverId, next: &RecoveryCode) -> Result<bool, StoreError> {
        let changed = with_pool!(self, |pool| {
            sqlx::query("UPDATE drivers SET recovery_code_hash = $2 WHERE id = $1")
                .bind(driver.to_string())
                .bind(token_hash(next.canonical()))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }
}

fn plate_taken(error: sqlx::Error, plate: &Plate) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::PlateTaken(plate.display().to_owned()),
        _ => StoreError::Database(error),
    }
}

/// Folds rows ordered by driver into one [`Driver`] each.
fn drivers_from_rows(rows: Vec<DriverPlateRow>) -> Result<Vec<Driver>, StoreError> {
    let mut drivers: Vec<Driver> = Vec::new();
    for (id, payment_method, plate) in rows {
        let id = parse_column("driver id", DriverId::parse(&id))?;
        if drivers.last().is_none_or(|d| d.id != id) {
            let token = parse_column("payment method", PaymentMethodToken::parse(&payment_method))?;
            drivers.push(Driver::new(id, token));
        }
        if let (Some(driver), Some(plate)) = (drivers.last_mut(), plate) {
            let plate = parse_column("driver plate", Plate::parse(&plate))?;
            parse_column("driver plate", driver.add_plate(plate))?;
        }
    }
    Ok(drivers)
}
