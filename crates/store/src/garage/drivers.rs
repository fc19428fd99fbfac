//! Signed-up drivers and their plates: register, add a plate, find by plate.

use chrono::{DateTime, Utc};
use valet_garage::{Driver, DriverId, PaymentMethodToken, Plate};

use super::{GarageStore, parse_column, with_pool};
use crate::StoreError;

/// One driver row joined with one of its plates (none for a driver without plates).
type DriverPlateRow = (String, String, Option<String>);

impl GarageStore {
    /// Stores a new driver with the plates already on the account, all or nothing.
    pub async fn register_driver(&self, driver: &Driver, at: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO drivers (id, payment_method, created_at) VALUES ($1, $2, $3)")
                .bind(driver.id.to_string())
                .bind(driver.payment_method.as_str())
                .bind(at)
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
