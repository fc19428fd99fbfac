//! A driver's way back in: sign in with a plate on the account and the recovery code, get a new
//! code, sign out. Until the garage can send email, the recovery code is the account's only key.
//!
//! A code signs in once and is replaced on use ([`SignedIn::recovery_code`], shown once like the
//! first): it was typed on a device that may not be the driver's own, and written on paper that may
//! be lying around, so a code that keeps working would be a key that can be copied unnoticed. A
//! recovery sign-in also signs out every other device of the account, because it is what a driver
//! does when a phone is lost or replaced, and a lost phone must stop opening the account.

use valet_billing::{ChargeLog, PaymentGateway};
use valet_garage::{Driver, Plate, RecoveryCode};
use valet_store::DriverToken;

use crate::desk::DeskError;
use crate::service::{GateError, GateService};

/// A driver signed in again: their account, a fresh token for this device, and the code that
/// replaces the one just used.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub driver: Driver,
    pub token: DriverToken,
    pub recovery_code: RecoveryCode,
}

impl<G: PaymentGateway, L: ChargeLog> GateService<G, L> {
    /// Signs in with `plate` (any spelling the account's plate folds to) and `code`. A wrong plate
    /// and a wrong code are the same [`DeskError::SignInRefused`].
    pub async fn sign_in(&self, plate: &Plate, code: &RecoveryCode) -> Result<SignedIn, DeskError> {
        let next = RecoveryCode::from_bytes(self.ids.fresh());
        let id = self.store().redeem_recovery_code(plate, code, &next).await?.ok_or(DeskError::SignInRefused)?;
        let driver = self.store().driver(id).await?.ok_or(GateError::Store(valet_store::StoreError::Corrupt(
            format!("driver {id} redeemed a recovery code but has no row"),
        )))?;
        let now = self.clock.now();
        let token = self.store().grant_driver_token(id, now).await?;
        let revoked = self.store().revoke_other_driver_tokens(id, &token).await?;
        tracing::info!(driver = %id, revoked, "driver signed in with a recovery code");
        Ok(SignedIn { driver, token, recovery_code: next })
    }

    /// A new recovery code for a signed-in driver (the old one stops working): for a driver who
    /// lost theirs, or whose account predates recovery codes.
    pub async fn new_recovery_code(&self, driver: &Driver) -> Result<RecoveryCode, DeskError> {
        let next = RecoveryCode::from_bytes(self.ids.fresh());
        self.store().replace_recovery_code(driver.id, &next).await?;
        Ok(next)
    }

    /// Signs a device out: its token opens nothing from now on.
    pub async fn sign_out(&self, token: &str) -> Result<(), DeskError> {
        self.store().revoke_driver_token(token).await?;
        Ok(())
    }
}
